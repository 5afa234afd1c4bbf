//! The tape-recording form of the fused BN + activation: one function for local and
//! synchronised batch norm, as [`crate::ops::batch_norm`]'s (whose statistics and reduced sums
//! it shares). The backward is the backends' two primitive steps, with the all-reduce of
//! synchronised BN between them.

use super::*;
use crate::autograd::{Recompute, Saved, Tape, Var};
use crate::ops::batch_norm::{global_statistics, reduced_sums};

/// Fused BN + ReLU on the tape; returns the output and, in train mode, the batch statistics.
pub fn batch_norm_relu(
    tape: &mut Tape,
    x: &Var,
    gamma: &Var,
    beta: &Var,
    mode: BnMode,
) -> Result<(Var, Option<BatchStats>)> {
    record(tape, x, None, gamma, beta, mode)
}

/// Fused BN + residual add + ReLU on the tape (the residual gets the masked gradient).
pub fn batch_norm_add_relu(
    tape: &mut Tape,
    x: &Var,
    residual: &Var,
    gamma: &Var,
    beta: &Var,
    mode: BnMode,
) -> Result<(Var, Option<BatchStats>)> {
    record(tape, x, Some(residual), gamma, beta, mode)
}

fn record(
    tape: &mut Tape,
    x: &Var,
    residual: Option<&Var>,
    gamma: &Var,
    beta: &Var,
    mode: BnMode,
) -> Result<(Var, Option<BatchStats>)> {
    let sync_with = crate::ops::batch_norm::sync_comm(&mode);
    let (mean, invstd, stats, sync) = match mode {
        BnMode::Train { eps, running, .. } => match sync_with {
            Some(comm) => {
                let g = global_statistics(comm, x.value(), eps, running)?;
                let invstd = bn_act_invstd(&g.var, eps)?;
                (g.stats.mean.clone(), invstd, Some(g.stats), Some(g.sync))
            }
            None => {
                let (mean, invstd, var_u, running) = bn_act_stats_running(x.value(), eps, running)?;
                let stats = BatchStats {
                    mean: mean.clone(),
                    var_unbiased: var_u,
                    running,
                };
                (mean, invstd, Some(stats), None)
            }
        },
        BnMode::Eval { mean, var, eps } => (mean.clone(), bn_act_invstd(var, eps)?, None, None),
    };
    let (xv, gv, bv) = (x.value(), gamma.value(), beta.value());
    let y = apply(xv, residual.map(|r| r.value()), gv, bv, &mean, &invstd)?;
    let batch_stats = stats.is_some();
    let count = batch_stats.then_some(xv.numel() / xv.last_dim());
    let with_res = residual.is_some();
    // Without a residual, y is a cheap function of what the backward keeps anyway: with
    // recomputation on, neither this op nor its readers keep y (autograd::Saved).
    let recipe = (tape.recomputes() && !with_res).then(|| {
        let (x, g, b, m, i) = (
            xv.clone(),
            gv.clone(),
            bv.clone(),
            mean.clone(),
            invstd.clone(),
        );
        Recompute::new(move || apply(&x, None, &g, &b, &m, &i))
    });
    let ys = match &recipe {
        Some(r) => Saved::Recompute(r.clone()),
        None => Saved::Value(y.clone()),
    };
    let (xs, gs, bs) = (xv.clone(), gv.clone(), bv.clone());
    let mut inputs = vec![x, gamma, beta];
    inputs.extend(residual);
    let op = if sync.is_some() { "sync_bn_act" } else { OP };
    let out = tape.record(op, &inputs, y, move |dy, needs| {
        // This op ran before every reader of y, so its backward is y's last use.
        let y = match &ys {
            Saved::Recompute(r) => r.take()?,
            Saved::Value(t) => t.clone(),
        };
        let saved = BnActSaved {
            x: &xs,
            y: &y,
            gamma: &gs,
            beta: &bs,
            mean: &mean,
            invstd: &invstd,
            batch_stats,
        };
        let (dg, db) = bn_act_grad_sums(&saved, dy, with_res)?;
        let wants_input = needs[0] || (with_res && needs[3]);
        let (dx, dres) = if wants_input {
            let sums = reduced_sums(sync.as_ref(), &dg, &db)?;
            let sums = (&sums.0, &sums.1);
            let (dx, dres) = bn_act_backward_from_sums(&saved, dy, sums, count, with_res)?;
            (Some(dx), dres)
        } else {
            (None, None)
        };
        let mut r = vec![if needs[0] { dx } else { None }, needs[1].then_some(dg)];
        r.push(needs[2].then_some(db));
        if with_res {
            r.push(if needs[3] { dres } else { None });
        }
        Ok(r)
    });
    let out = match recipe {
        Some(r) => out.with_recompute(r),
        None => out,
    };
    Ok((out, stats))
}
