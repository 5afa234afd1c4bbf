//! Batch norm + (residual add +) ReLU on the GPU: the same kernels as plain batch norm
//! (src/cuda/bn.rs) with the ReLU and residual switched on: one apply pass forward; one
//! masked gradient-sum launch and one backward-apply pass backward. The ReLU mask is the saved
//! output's sign. Parameters and statistics are read as f32 (cast when given in bf16).

use super::bn::apply;
use super::bn_backward::{backward_apply, sums, Saved};
use crate::{Result, Tensor};

pub use super::bn::{invstd, stats};

/// y = relu(bn(x) [+ residual]) in x's dtype.
pub fn forward(
    x: &Tensor,
    residual: Option<&Tensor>,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<Tensor> {
    apply(x, residual, mean, invstd, gamma, Some(beta), true)
}

/// Returns (dx, dgamma f32, dbeta f32, dresidual when `residual`).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &Tensor,
    y: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    batch_stats: bool,
    residual: bool,
) -> Result<(Tensor, Tensor, Tensor, Option<Tensor>)> {
    let (dgamma, dbeta) = grad_sums(x, y, dy, mean, invstd)?;
    let m = x.numel() / x.last_dim();
    let sums = (&dgamma, &dbeta);
    let (dx, dres) = backward_from_sums(
        x,
        y,
        dy,
        gamma,
        mean,
        invstd,
        sums,
        m,
        batch_stats,
        residual,
    )?;
    Ok((dx, dgamma, dbeta, dres))
}

/// (dgamma, dbeta) = (Σ dy'·x̂, Σ dy') over the masked dy' = dy·[y > 0], f32.
pub fn grad_sums(
    x: &Tensor,
    y: &Tensor,
    dy: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<(Tensor, Tensor)> {
    sums(x, Some(y), dy, mean, invstd)
}

/// (dx, dresidual when `residual`) from the sums (dgamma, dbeta) over the `m` rows the
/// statistics came from.
#[allow(clippy::too_many_arguments)]
pub fn backward_from_sums(
    x: &Tensor,
    y: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    sums: (&Tensor, &Tensor),
    m: usize,
    batch_stats: bool,
    residual: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let saved = Saved {
        x,
        y: Some(y),
        gamma,
        mean,
        invstd,
    };
    backward_apply(&saved, dy, sums, m, batch_stats, residual)
}
