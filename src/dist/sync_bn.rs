//! Synchronised batch norm (train mode, world of more than one): plain, + ReLU, + residual add +
//! ReLU, normalising every rank's rows with the statistics of all ranks' rows.
//!
//! Forward: local mean and variance → [`global_moments`] (one all-gather) → the apply ops with
//! the global statistics. Backward: with M rows in all and x̂ = (x − mean)·invstd,
//! dx = γ·invstd·(dy − Σdy/M − x̂·Σ(dy·x̂)/M) where both sums run over *every* rank's rows: each
//! rank computes its partial sums, one all-reduce adds them, and the backward apply uses the
//! totals (scaled on the device by the rank's share of M, see [`global_sums`]). Nothing of the
//! statistics goes through the host. dγ and dβ stay the rank's partial sums; the step's all-reduce of the parameter
//! gradients adds them up with everything else.

use super::{global_moments, Comm, Communicator};
use crate::autograd::{Recompute, Saved, Tape, Var};
use crate::ops::batch_norm::{
    batch_norm_backward_from_sums, batch_norm_eval_forward, batch_norm_grad_sums, BatchStats,
};
use crate::ops::bn_act::{
    batch_norm_add_relu_forward, batch_norm_relu_forward, bn_act_backward_from_sums,
    bn_act_grad_sums, bn_act_invstd, bn_act_stats, BnActSaved,
};
use crate::ops::moments::moments_scale;
use crate::Tensor;
use crate::{Error, Result};

/// What follows the normalisation.
pub enum BnAct<'a> {
    None,
    Relu,
    /// relu(bn(x) + residual).
    AddRelu(&'a Var),
}

/// Σdγ and Σdβ over every rank's rows, scaled by this rank's share of the rows: the backward
/// applies then divide by the local row count, which gives the division by all rows without
/// the global count reaching the host.
fn global_sums(
    comm: &dyn Communicator,
    dg: &Tensor,
    db: &Tensor,
    share: &Tensor,
) -> Result<Vec<Tensor>> {
    comm.all_reduce_sum(&[dg.clone(), db.clone()])?
        .iter()
        .map(|s| moments_scale(s, share))
        .collect()
}

/// Train-mode batch norm over the rows of all ranks; returns the output and the global batch
/// statistics (for the running averages). `beta` is required with a ReLU.
pub fn sync_batch_norm(
    tape: &mut Tape,
    comm: &Comm,
    x: &Var,
    gamma: &Var,
    beta: Option<&Var>,
    act: BnAct,
    eps: f64,
) -> Result<(Var, BatchStats)> {
    let xv = x.value();
    let (mean_l, _, var_u_l) = bn_act_stats(xv, eps)?;
    let rows = xv.numel() / xv.last_dim();
    let g = global_moments(comm.as_ref(), &mean_l, &var_u_l, rows)?;
    let stats = BatchStats {
        mean: g.mean.clone(),
        var_unbiased: g.var_unbiased.clone(),
        running: None,
    };
    let (mean, share, comm) = (g.mean, g.share, comm.clone());
    let (xs, gs) = (xv.clone(), gamma.value().clone());
    let out = match act {
        BnAct::None => {
            let bv = beta.map(|b| b.value());
            let (y, invstd) = batch_norm_eval_forward(xv, &gs, bv, &mean, &g.var, eps)?;
            let mut inputs = vec![x, gamma];
            inputs.extend(beta);
            tape.record("sync_batch_norm", &inputs, y, move |dy, needs| {
                let (dg, db) = batch_norm_grad_sums(&xs, dy, &mean, &invstd)?;
                let dx = if needs[0] {
                    let s = global_sums(comm.as_ref(), &dg, &db, &share)?;
                    let dx = batch_norm_backward_from_sums(
                        &xs, dy, &gs, &mean, &invstd, &s[0], &s[1], rows,
                    )?;
                    Some(dx)
                } else {
                    None
                };
                let mut r = vec![dx, needs[1].then_some(dg)];
                if needs.len() == 3 {
                    r.push(needs[2].then_some(db));
                }
                Ok(r)
            })
        }
        BnAct::Relu | BnAct::AddRelu(_) => {
            let beta = beta.ok_or_else(|| {
                Error::Config("sync batch_norm: a fused BN + ReLU needs a beta".into())
            })?;
            let invstd = bn_act_invstd(&g.var, eps)?;
            let residual = match act {
                BnAct::AddRelu(r) => Some(r),
                _ => None,
            };
            let y = match residual {
                Some(r) => {
                    batch_norm_add_relu_forward(xv, r.value(), &gs, beta.value(), &mean, &invstd)?
                }
                None => batch_norm_relu_forward(xv, &gs, beta.value(), &mean, &invstd)?,
            };
            let with_res = residual.is_some();
            // As the single-process op: with recomputation on, y (without a residual) is
            // rebuilt in backward from what is kept anyway, here the global statistics.
            let recipe = (tape.recomputes() && !with_res).then(|| {
                let (x, g, b, m, i) = (
                    xs.clone(),
                    gs.clone(),
                    beta.value().clone(),
                    mean.clone(),
                    invstd.clone(),
                );
                Recompute::new(move || batch_norm_relu_forward(&x, &g, &b, &m, &i))
            });
            let ys = match &recipe {
                Some(r) => Saved::Recompute(r.clone()),
                None => Saved::Value(y.clone()),
            };
            let bs = beta.value().clone();
            let mut inputs = vec![x, gamma, beta];
            inputs.extend(residual);
            let out = tape.record("sync_bn_act", &inputs, y, move |dy, needs| {
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
                    batch_stats: true,
                };
                let (dg, db) = bn_act_grad_sums(&saved, dy, with_res)?;
                let wants_input = needs[0] || (with_res && needs[3]);
                let (dx, dres) = if wants_input {
                    let s = global_sums(comm.as_ref(), &dg, &db, &share)?;
                    let (dx, dres) =
                        bn_act_backward_from_sums(&saved, dy, (&s[0], &s[1]), rows, with_res)?;
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
            match recipe {
                Some(r) => out.with_recompute(r),
                None => out,
            }
        }
    };
    Ok((out, stats))
}
