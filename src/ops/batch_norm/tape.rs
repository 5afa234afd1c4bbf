//! The tape-recording form of batch norm, and the pieces the fused BN + activation shares with
//! it: one function for local and synchronised batch norm.
//!
//! The backward is the backends' two primitive steps, with the all-reduce of synchronised BN
//! between them: the per-channel sums (Σ dy·x̂, Σ dy), then dx from the sums. Synchronised, with
//! M rows over all ranks, dx = γ·invstd·(dy − Σdy/M − x̂·Σ(dy·x̂)/M) where both sums run over
//! *every* rank's rows: one all-reduce adds the ranks' partial sums, scaled on the device by
//! this rank's share of M so the step's division by its own row count divides by M (the
//! global count never reaches the host). dγ and dβ stay the rank's partial sums; the step's
//! all-reduce of the parameter gradients adds them up with everything else. The forward's
//! statistics come from [`global_moments`] (one all-gather), nothing through the host.

use super::*;
use crate::autograd::{Tape, Var};
use crate::comm::{global_moments, Comm};
use crate::ops::moments::moments_scale;

pub enum BnMode<'a> {
    /// Batch statistics; given running averages, the stats come back with their update. With
    /// a communicator of more than one rank, the statistics of all ranks' rows.
    Train {
        eps: f64,
        running: Option<Running<'a>>,
        comm: Option<&'a Comm>,
    },
    Eval {
        mean: &'a Tensor,
        var: &'a Tensor,
        eps: f64,
    },
}

/// The train-mode statistics of every rank's rows.
pub(crate) struct GlobalStatistics {
    /// The biased variance (what the normalisation uses).
    pub var: Tensor,
    /// Mean, unbiased variance and the running averages' update.
    pub stats: BatchStats,
    /// What the backward needs to finish the sums over every rank's rows.
    pub sync: RankShare,
}

/// A synchronised backward's communicator and this rank's share of the rows ([1], on the
/// device).
#[derive(Clone)]
pub(crate) struct RankShare {
    comm: Comm,
    share: Tensor,
}

/// The communicator when `mode` asks for synchronised batch norm (train mode, several ranks).
pub(crate) fn sync_comm<'a>(mode: &BnMode<'a>) -> Option<&'a Comm> {
    match mode {
        BnMode::Train { comm, .. } => comm.filter(|c| c.world_size() > 1),
        BnMode::Eval { .. } => None,
    }
}

/// This rank's statistics combined with every other rank's, and the running averages folded.
pub(crate) fn global_statistics(
    comm: &Comm,
    x: &Tensor,
    eps: f64,
    running: Option<Running>,
) -> Result<GlobalStatistics> {
    let (mean_l, _, var_u_l) = crate::ops::bn_act::bn_act_stats(x, eps)?;
    let rows = x.numel() / x.last_dim();
    let g = global_moments(comm.as_ref(), &mean_l, &var_u_l, rows)?;
    let running = running
        .map(|r| running_update(r, &g.mean, &g.var_unbiased))
        .transpose()?;
    Ok(GlobalStatistics {
        stats: BatchStats {
            mean: g.mean,
            var_unbiased: g.var_unbiased,
            running,
        },
        var: g.var,
        sync: RankShare {
            comm: comm.clone(),
            share: g.share,
        },
    })
}

/// The backward's sums as its second step takes them: this rank's own, or (synchronised) those
/// of every rank's rows scaled by this rank's share.
pub(crate) fn reduced_sums(
    sync: Option<&RankShare>,
    dgamma: &Tensor,
    dbeta: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let Some(s) = sync else {
        return Ok((dgamma.clone(), dbeta.clone()));
    };
    let all = s.comm.all_reduce_sum(&[dgamma.clone(), dbeta.clone()])?;
    Ok((
        moments_scale(&all[0], &s.share)?,
        moments_scale(&all[1], &s.share)?,
    ))
}

/// Batch norm on the tape. `beta` is optional (the projection head's last layer has none).
/// Returns the output and, in train mode, the batch statistics (all ranks', synchronised).
pub fn batch_norm(
    tape: &mut Tape,
    x: &Var,
    gamma: &Var,
    beta: Option<&Var>,
    mode: BnMode,
) -> Result<(Var, Option<BatchStats>)> {
    let bv = beta.map(|b| b.value());
    let (xv, gv) = (x.value(), gamma.value());
    let sync_with = sync_comm(&mode);
    let (y, mean, invstd, stats, sync) = match mode {
        BnMode::Train { eps, running, .. } => match sync_with {
            Some(comm) => {
                let g = global_statistics(comm, xv, eps, running)?;
                let mean = g.stats.mean.clone();
                let (y, invstd) = batch_norm_eval_forward(xv, gv, bv, &mean, &g.var, eps)?;
                (y, mean, invstd, Some(g.stats), Some(g.sync))
            }
            None => {
                let (y, (mean, invstd, var_u, running)) =
                    batch_norm_train_forward_running(xv, gv, bv, eps, running)?;
                let stats = BatchStats {
                    mean: mean.clone(),
                    var_unbiased: var_u,
                    running,
                };
                (y, mean, invstd, Some(stats), None)
            }
        },
        BnMode::Eval { mean, var, eps } => {
            let (y, invstd) = batch_norm_eval_forward(xv, gv, bv, mean, var, eps)?;
            (y, mean.clone(), invstd, None, None)
        }
    };
    let rows = xv.numel() / xv.last_dim();
    let count = stats.is_some().then_some(rows);
    let (xs, gs) = (xv.clone(), gv.clone());
    let mut inputs = vec![x, gamma];
    inputs.extend(beta);
    let op = if sync.is_some() {
        "sync_batch_norm"
    } else {
        "batch_norm"
    };
    let out = tape.record(op, &inputs, y, move |dy, needs| {
        let (dg, db) = batch_norm_grad_sums(&xs, dy, &mean, &invstd)?;
        let dx = if needs[0] {
            let sums = reduced_sums(sync.as_ref(), &dg, &db)?;
            let sums = (&sums.0, &sums.1);
            let dx = batch_norm_backward_from_sums(&xs, dy, &gs, &mean, &invstd, sums, count)?;
            Some(dx)
        } else {
            None
        };
        let mut r = vec![dx, needs[1].then_some(dg)];
        if needs.len() == 3 {
            r.push(needs[2].then_some(db));
        }
        Ok(r)
    });
    Ok((out, stats))
}
