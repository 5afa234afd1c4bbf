//! Batch norm fused with ReLU, and with a residual add before the ReLU (the end of a ResNet
//! block), over the last dimension (NHWC channels):
//!
//! `y = relu(bn(x))` and `y = relu(bn(x) + residual)`.
//!
//! The statistics are a separate reduction ([`bn_act_stats`]); the apply and the backward
//! apply are one pass each, so the normalised tensor is never written. The backward takes the
//! output y, whose sign is the ReLU mask, instead of the pre-activation; on the GPU, BN + ReLU
//! without a residual recomputes the mask from x, gamma, beta and the statistics instead (x is
//! read anyway; src/ops/bn_act/cuda.rs), the same mask by construction. On the GPU the
//! statistics and parameter gradients are f32 whatever the activations' dtype (as
//! [`crate::ops::batch_norm`]).

pub mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
#[cfg(test)]
mod tests;

mod tape;
pub use tape::{batch_norm_add_relu, batch_norm_relu};

use crate::ops::batch_norm::{bn_act_stats_running, BatchStats, BnMode};
use crate::{on_backend, Error, Result, Tensor};

const OP: &str = "bn_act";

/// What each backend provides (the CPU in cpu.rs, the GPU in cuda.rs); `mod.rs` checks the
/// operands and assembles the backward from the two steps.
pub(crate) trait BnActKernels {
    /// Batch statistics: (mean, invstd, unbiased variance).
    fn stats(x: &Tensor, eps: f64) -> Result<(Tensor, Tensor, Tensor)>;
    /// 1/sqrt(var + eps) of running statistics.
    fn invstd(var: &Tensor, eps: f64) -> Result<Tensor>;
    /// relu((x − mean)·invstd·gamma + beta [+ residual]).
    fn forward(
        x: &Tensor,
        residual: Option<&Tensor>,
        gamma: &Tensor,
        beta: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
    ) -> Result<Tensor>;
    /// (Σ dy'·x̂, Σ dy') over the masked dy' = dy·[y > 0]; `residual`: whether one went
    /// into y.
    fn grad_sums(s: &BnActSaved, dy: &Tensor, residual: bool) -> Result<(Tensor, Tensor)>;
    /// (dx, dresidual when `residual`) from the sums over the `count` rows of the statistics
    /// (`None`: eval mode).
    fn backward_from_sums(
        s: &BnActSaved,
        dy: &Tensor,
        sums: (&Tensor, &Tensor),
        count: Option<usize>,
        residual: bool,
    ) -> Result<(Tensor, Option<Tensor>)>;
}

fn check(x: &Tensor, same: &[(&str, &Tensor)], channel: &[(&str, &Tensor)]) -> Result<()> {
    let c = x.last_dim();
    if x.rank() < 2 || x.numel() == 0 {
        return Err(Error::shape(
            OP,
            format!(
                "input must have rank >= 2 and elements, got {:?}",
                x.shape()
            ),
        ));
    }
    for (what, t) in same {
        if t.shape() != x.shape() {
            return Err(Error::shape(
                OP,
                format!("{what} {:?} for input {:?}", t.shape(), x.shape()),
            ));
        }
    }
    for (what, t) in channel {
        if t.shape() != [c] {
            return Err(Error::shape(
                OP,
                format!("{what} has shape {:?}, input has {c} channels", t.shape()),
            ));
        }
    }
    Ok(())
}

/// Batch statistics: (mean, invstd, unbiased variance).
pub fn bn_act_stats(x: &Tensor, eps: f64) -> Result<(Tensor, Tensor, Tensor)> {
    check(x, &[], &[])?;
    on_backend!(OP, [x], B => B::stats(x, eps))
}

/// invstd = 1/sqrt(var + eps) of running statistics (eval mode).
pub fn bn_act_invstd(var: &Tensor, eps: f64) -> Result<Tensor> {
    on_backend!(OP, [var], B => B::invstd(var, eps))
}

fn apply(
    x: &Tensor,
    residual: Option<&Tensor>,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<Tensor> {
    let same: Vec<_> = residual.map(|r| ("residual", r)).into_iter().collect();
    let ch = [
        ("gamma", gamma),
        ("beta", beta),
        ("mean", mean),
        ("invstd", invstd),
    ];
    check(x, &same, &ch)?;
    let ops: Vec<&Tensor> = std::iter::once(x).chain(residual).collect();
    on_backend!(OP, slice &ops, B => B::forward(x, residual, gamma, beta, mean, invstd))
}

/// y = relu((x − mean)·invstd·gamma + beta).
pub fn batch_norm_relu_forward(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<Tensor> {
    apply(x, None, gamma, beta, mean, invstd)
}

/// y = relu((x − mean)·invstd·gamma + beta + residual).
pub fn batch_norm_add_relu_forward(
    x: &Tensor,
    residual: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<Tensor> {
    apply(x, Some(residual), gamma, beta, mean, invstd)
}

/// The saved forward state of one fused BN + activation.
pub struct BnActSaved<'a> {
    pub x: &'a Tensor,
    /// The forward's output: the ReLU mask is y > 0.
    pub y: &'a Tensor,
    pub gamma: &'a Tensor,
    /// The forward's beta (the GPU recomputes the mask from x without a residual).
    pub beta: &'a Tensor,
    pub mean: &'a Tensor,
    pub invstd: &'a Tensor,
    /// Whether mean and invstd are the batch's own (train mode).
    pub batch_stats: bool,
}

type Grads = (Tensor, Tensor, Tensor, Option<Tensor>);

/// The saved forward and dy agree in shape, dtype and device (both backward entries).
fn check_saved(s: &BnActSaved, dy: &Tensor) -> Result<()> {
    let ch = [
        ("gamma", s.gamma),
        ("beta", s.beta),
        ("mean", s.mean),
        ("invstd", s.invstd),
    ];
    check(s.x, &[("y", s.y), ("dy", dy)], &ch)
}

/// (dx, dgamma, dbeta, dresidual when `residual`), assembled from the backends' two primitive
/// steps: the gradient sums over the masked dy, then dx (and the masked dy for the residual).
fn backward(s: &BnActSaved, dy: &Tensor, residual: bool) -> Result<Grads> {
    let (dgamma, dbeta) = bn_act_grad_sums(s, dy, residual)?;
    let rows = s.x.numel() / s.x.last_dim();
    let count = s.batch_stats.then_some(rows);
    let (dx, dres) = bn_act_backward_from_sums(s, dy, (&dgamma, &dbeta), count, residual)?;
    Ok((dx, dgamma, dbeta, dres))
}

/// The per-channel sums of the train-mode backward over the masked dy' = dy·[y > 0],
/// (Σ dy'·x̂, Σ dy') = (dgamma, dbeta): what data-parallel BN adds up across ranks before
/// [`bn_act_backward_from_sums`]. `residual`: whether a residual went into y.
pub fn bn_act_grad_sums(s: &BnActSaved, dy: &Tensor, residual: bool) -> Result<(Tensor, Tensor)> {
    check_saved(s, dy)?;
    on_backend!(OP, [s.x, s.y, dy], B => B::grad_sums(s, dy, residual))
}

/// (dx, dresidual when `residual`) from the sums (dgamma, dbeta) of [`bn_act_grad_sums`] over
/// the `count` rows the statistics were taken from (possibly on several ranks, of which `s.x`
/// holds some); `None`: eval mode, the statistics are constants.
pub fn bn_act_backward_from_sums(
    s: &BnActSaved,
    dy: &Tensor,
    sums: (&Tensor, &Tensor),
    count: Option<usize>,
    residual: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let ch = [
        ("gamma", s.gamma),
        ("beta", s.beta),
        ("mean", s.mean),
        ("invstd", s.invstd),
        ("dgamma", sums.0),
        ("dbeta", sums.1),
    ];
    check(s.x, &[("y", s.y), ("dy", dy)], &ch)?;
    let rows = s.x.numel() / s.x.last_dim();
    if let Some(count) = count.filter(|&n| n < rows) {
        return Err(Error::shape(
            OP,
            format!("statistics over {count} rows cannot include the {rows} rows of the input"),
        ));
    }
    on_backend!(OP, [s.x, s.y, dy], B => B::backward_from_sums(s, dy, sums, count, residual))
}

/// Returns (dx, dgamma, dbeta).
pub fn batch_norm_relu_backward(s: &BnActSaved, dy: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
    let (dx, dg, db, _) = backward(s, dy, false)?;
    Ok((dx, dg, db))
}

/// Returns (dx, dgamma, dbeta, dresidual).
pub fn batch_norm_add_relu_backward(s: &BnActSaved, dy: &Tensor) -> Result<Grads> {
    backward(s, dy, true)
}
