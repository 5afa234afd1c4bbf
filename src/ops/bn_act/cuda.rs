//! Batch norm + (residual add +) ReLU on the GPU: the same kernels as plain batch norm
//! (src/ops/batch_norm/cuda.rs) with the ReLU and residual switched on: one apply pass forward; one
//! masked gradient-sum launch and one backward-apply pass backward. Without a residual the
//! ReLU mask is recomputed from x (which both backward launches read anyway) with the
//! forward's own device function, so y is not read; with one, the mask is the saved output's
//! sign (kernels/bn.cuh). Parameters and statistics are read as f32 (cast when given in bf16).

use crate::ops::batch_norm::cuda::apply;
use crate::ops::batch_norm::cuda_backward::{backward_apply, sums, Relu, Saved};
use crate::{Result, Tensor};

pub use crate::ops::batch_norm::cuda::{invstd, stats};

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

/// What the backward needs of the forward: x, its output y, gamma and beta.
pub struct Forward<'a> {
    pub x: &'a Tensor,
    pub y: &'a Tensor,
    pub gamma: &'a Tensor,
    pub beta: &'a Tensor,
}

impl<'a> Forward<'a> {
    /// The mask's source: y when a residual went into it, else the pre-activation from x.
    fn relu(&self, residual: bool) -> Relu<'a> {
        match residual {
            true => Relu::FromOutput(self.y),
            false => Relu::FromInput {
                gamma: self.gamma,
                beta: self.beta,
            },
        }
    }
}

/// (dgamma, dbeta) = (Σ dy'·x̂, Σ dy') over the masked dy' = dy·[y > 0], f32.
pub fn grad_sums(
    f: &Forward,
    dy: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    residual: bool,
) -> Result<(Tensor, Tensor)> {
    sums(f.x, f.relu(residual), dy, mean, invstd)
}

/// (dx, dresidual when `residual`) from the sums (dgamma, dbeta) over the `m` rows the
/// statistics came from.
#[allow(clippy::too_many_arguments)]
pub fn backward_from_sums(
    f: &Forward,
    dy: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    sums: (&Tensor, &Tensor),
    m: usize,
    batch_stats: bool,
    residual: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let saved = Saved {
        x: f.x,
        relu: f.relu(residual),
        gamma: f.gamma,
        mean,
        invstd,
    };
    backward_apply(&saved, dy, sums, m, batch_stats, residual)
}
