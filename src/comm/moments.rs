//! Batch statistics of rows spread over ranks. Each rank contributes its per-channel mean, sum
//! of squared deviations M2 and row count; they are combined exactly by Chan, Golub and
//! LeVeque's pairwise update, never through Σx² − n·mean² (which cancels catastrophically when
//! a channel's mean is large against its spread). [`crate::ops::moments::combine_moments`] is
//! the host reference (f64); [`global_moments`] does the same on the statistics' device
//! through [`crate::ops::moments`].

use super::Communicator;
use crate::ops::moments::{moments_combine, moments_pack};
use crate::{Result, Tensor};

/// The statistics of the global batch, as tensors on the local statistics' device (f32 on the
/// GPU, the statistics' dtype on the CPU).
pub struct GlobalMoments {
    pub mean: Tensor,
    /// Biased variance (what the normalisation uses).
    pub var: Tensor,
    /// Unbiased variance (what the running average folds in).
    pub var_unbiased: Tensor,
    /// [1]: this rank's rows / rows over all ranks, on the device (the backward scales the
    /// all-reduced sums by it, so the global row count never has to reach the host).
    pub share: Tensor,
}

/// Combines this rank's statistics of `rows` rows (mean and unbiased variance, as the batch
/// norm ops return them) with every other rank's, on their device: pack ([`moments_pack`]),
/// one all-gather of equal shapes, combine ([`moments_combine`]). No download, no wait.
pub fn global_moments(
    comm: &dyn Communicator,
    mean: &Tensor,
    var_unbiased: &Tensor,
    rows: usize,
) -> Result<GlobalMoments> {
    let packed = moments_pack(mean, var_unbiased, rows)?;
    let all = comm.all_gather_same(&packed)?;
    let g = moments_combine(&all, rows)?;
    Ok(GlobalMoments {
        mean: g.mean,
        var: g.var,
        var_unbiased: g.var_unbiased,
        share: g.share,
    })
}
