//! Batch norm + (residual add +) ReLU on the GPU: the same kernels as plain batch norm
//! (src/ops/batch_norm/cuda.rs) with the ReLU and residual switched on: one apply pass forward; one
//! masked gradient-sum launch and one backward-apply pass backward. Without a residual the
//! ReLU mask is recomputed from x (which both backward launches read anyway) with the
//! forward's own device function, so y is not read; with one, the mask is the saved output's
//! sign (kernels/bn.cuh). Parameters and statistics are read as f32 (cast when given in bf16).

use super::{BnActKernels, BnActSaved};
use crate::ops::backend::Cuda;
use crate::ops::batch_norm::cuda::{apply, invstd, stats};
use crate::ops::batch_norm::cuda_backward::{backward_apply, sums, Relu, Saved};
use crate::{Result, Tensor};

/// The mask's source: y when a residual went into it, else the pre-activation from x.
fn relu<'a>(s: &BnActSaved<'a>, residual: bool) -> Relu<'a> {
    match residual {
        true => Relu::FromOutput(s.y),
        false => Relu::FromInput {
            gamma: s.gamma,
            beta: s.beta,
        },
    }
}

impl BnActKernels for Cuda {
    fn stats(x: &Tensor, eps: f64) -> Result<(Tensor, Tensor, Tensor)> {
        stats(x, eps)
    }

    fn invstd(var: &Tensor, eps: f64) -> Result<Tensor> {
        invstd(var, eps)
    }

    /// y = relu(bn(x) [+ residual]) in x's dtype.
    fn forward(
        x: &Tensor,
        residual: Option<&Tensor>,
        gamma: &Tensor,
        beta: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
    ) -> Result<Tensor> {
        apply(x, residual, mean, invstd, gamma, Some(beta), true)
    }

    /// (dgamma, dbeta) = (Σ dy'·x̂, Σ dy') over the masked dy' = dy·[y > 0], f32.
    fn grad_sums(s: &BnActSaved, dy: &Tensor, residual: bool) -> Result<(Tensor, Tensor)> {
        sums(s.x, relu(s, residual), dy, s.mean, s.invstd)
    }

    fn backward_from_sums(
        s: &BnActSaved,
        dy: &Tensor,
        sums: (&Tensor, &Tensor),
        count: Option<usize>,
        residual: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let saved = Saved {
            x: s.x,
            relu: relu(s, residual),
            gamma: s.gamma,
            mean: s.mean,
            invstd: s.invstd,
        };
        // The kernel takes the row count of the statistics and whether they are the batch's.
        let rows = s.x.numel() / s.x.last_dim();
        backward_apply(
            &saved,
            dy,
            sums,
            count.unwrap_or(rows),
            count.is_some(),
            residual,
        )
    }
}
