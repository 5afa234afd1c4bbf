//! Batch statistics of rows spread over ranks, on the device of the statistics (synchronised
//! batch norm, [`crate::comm::global_moments`]):
//!
//! - [`moments_pack`]: one rank's per-channel mean and unbiased variance of `rows` rows →
//!   one packed row `[mean, M2, rows mod 2^24, rows / 2^24]` (2c + 2 values; M2 the sum of
//!   squared deviations, the count as two 24-bit halves, exact in f32);
//! - the rows of all ranks are all-gathered ([`crate::comm::Communicator::all_gather_same`]);
//! - [`moments_combine`]: the packed rows of all ranks → the global mean, biased and unbiased
//!   variance (Chan, Golub and LeVeque's pairwise update in rank order, in f64, never through
//!   Σx² − n·mean²), and `share` = this rank's rows / all rows, a one-element tensor;
//! - [`moments_scale`]: s · share, turning the all-reduced backward sums over all rows into sums
//!   scaled for the local row count (what `batch_norm_backward_from_sums` divides by).
//!
//! The counts never come back to the host. CPU: in the statistics' dtype (f32/f64); CUDA:
//! f32 (kernels/moments.cu), as the batch-norm statistics there.

mod combine;
pub mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
#[cfg(test)]
mod tests;

pub use combine::{combine_moments, Moments};

use crate::{on_backend, Error, Result, Tensor};

/// What each backend provides for the packed statistics (the CPU's and the GPU's implementations take the
/// same arguments: the compiler checks them against this trait).
pub(crate) trait MomentsKernels {
    fn moments_pack(mean: &Tensor, var_u: &Tensor, rows: usize) -> Result<Tensor>;
    fn moments_combine(all: &Tensor, local: usize) -> Result<Combined>;
    fn moments_scale(s: &Tensor, share: &Tensor) -> Result<Tensor>;
}

const OP: &str = "moments";

/// Counts travel as two floats of 24 bits each, exact in f32.
pub const COUNT_SPLIT: f64 = (1u64 << 24) as f64;

/// The length of one packed row of `c` channels.
pub fn packed_len(c: usize) -> usize {
    2 * c + 2
}

/// The global statistics and this rank's share of the rows.
#[derive(Debug)]
pub struct Combined {
    pub mean: Tensor,
    /// Biased variance (what the normalisation uses).
    pub var: Tensor,
    /// Unbiased variance (what the running averages fold in).
    pub var_unbiased: Tensor,
    /// [1]: local rows / rows over all ranks.
    pub share: Tensor,
}

fn check_rows(rows: usize, what: &str) -> Result<()> {
    if rows == 0 || rows as f64 >= COUNT_SPLIT * COUNT_SPLIT {
        return Err(Error::shape(
            OP,
            format!("{what} of {rows} rows (allowed: 1 to 2^48 - 1)"),
        ));
    }
    Ok(())
}

/// The packed row [1, 2c + 2] of statistics (`mean`, `var_unbiased`: [c]) over `rows` rows.
pub fn moments_pack(mean: &Tensor, var_unbiased: &Tensor, rows: usize) -> Result<Tensor> {
    let c = mean.numel();
    if mean.shape() != [c] || var_unbiased.shape() != [c] {
        return Err(Error::shape(
            OP,
            format!(
                "mean {:?} and unbiased variance {:?} must both be [channels]",
                mean.shape(),
                var_unbiased.shape()
            ),
        ));
    }
    check_rows(rows, "statistics")?;
    on_backend!(OP, [mean, var_unbiased], B => B::moments_pack(mean, var_unbiased, rows))
}

/// The global statistics from the packed rows of every rank (`all`: [W, 2c + 2]); `local` is
/// this rank's row count (for `share`).
pub fn moments_combine(all: &Tensor, local: usize) -> Result<Combined> {
    let ok = matches!(all.shape(), [w, l] if *w > 0 && *l >= 4 && l % 2 == 0);
    if !ok {
        return Err(Error::shape(
            OP,
            format!(
                "packed statistics {:?}: expected [ranks, 2·channels + 2]",
                all.shape()
            ),
        ));
    }
    check_rows(local, "this rank's statistics")?;
    on_backend!(OP, [all], B => B::moments_combine(all, local))
}

/// s · share[0], elementwise (`share`: [1] from [`moments_combine`]).
pub fn moments_scale(s: &Tensor, share: &Tensor) -> Result<Tensor> {
    if share.shape() != [1] {
        return Err(Error::shape(
            OP,
            format!("share {:?}: expected [1]", share.shape()),
        ));
    }
    on_backend!(OP, [s, share], B => B::moments_scale(s, share))
}
