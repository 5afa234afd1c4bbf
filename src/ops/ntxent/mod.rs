//! NT-Xent, the SimCLR contrastive loss, fused with its gradient, with optional extra negatives
//! from a memory queue (the MoCo-style memory of SimCLRv2).
//!
//! Input `z` is [2N, d]: rows 0..N are view a of images 0..N, rows N..2N view b of the same
//! images, so the positive of row i is row (i + N) mod 2N. Rows are expected to be
//! L2-normalised already (compose with [`crate::ops::l2_normalize`]); the op uses plain dot
//! products, so sim(z_i, z_k) = z_i·z_k. An optional queue [K, d] of normalised negatives takes
//! part in every anchor's denominator and receives no gradient.
//!
//! **Convention**: the loss is the *mean over all 2N anchors* of
//! `−log( exp(s_ip/τ) / Σ_{k≠i} exp(s_ik/τ) )`, the sum running over the 2N−1 other batch
//! rows and the K queue rows. The official TF code instead returns `loss_a + loss_b` (each a
//! mean over N anchors), which is exactly **twice** this value; multiply by 2 (or double the
//! learning rate's share) to reproduce it.
//!
//! The CPU kernel never forms the 2N×2N matrix: one parallel pass over rows computes each
//! anchor's log-sum-exp online, a second recomputes the similarities to build the gradient.

pub mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
mod deferred;
#[cfg(test)]
mod tests;

mod tape;
pub use tape::ntxent;

use crate::{on_backend, Error, Result, Tensor};

/// What each backend provides for NT-Xent (the CPU's and the GPU's implementations take the
/// same arguments: the compiler checks them against this trait).
pub(crate) trait NtXentKernels {
    /// (mean loss of shape [], its gradient w.r.t. `z`).
    fn ntxent_forward(z: &Tensor, queue: Option<&Tensor>, tau: f64) -> Result<(Tensor, Tensor)>;
    /// The contrastive accuracy, left where it was computed.
    fn ntxent_accuracy(z: &Tensor, queue: Option<&Tensor>) -> Result<Accuracy>;
    /// `dz · g` for the upstream gradient `g` (shape []).
    fn scale_by_upstream(dz: &Tensor, g: &Tensor) -> Result<Tensor>;
}
pub use deferred::{ntxent_accuracy_deferred, Accuracy};

const OP: &str = "ntxent";

/// Validates shapes and the temperature; returns (2N, d).
fn check(z: &Tensor, queue: Option<&Tensor>, tau: Option<f64>) -> Result<(usize, usize)> {
    let (rows, d) = z.dims2(OP)?;
    if rows < 2 || rows % 2 != 0 {
        return Err(Error::shape(
            OP,
            format!(
                "needs an even number (>= 2) of rows [view a; view b], got shape {:?}",
                z.shape()
            ),
        ));
    }
    if d == 0 {
        return Err(Error::shape(OP, "projections of width 0"));
    }
    if let Some(q) = queue {
        let (_, qd) = q.dims2(OP)?;
        if qd != d {
            return Err(Error::shape(
                OP,
                format!(
                    "queue of shape {:?} for projections of width {d}",
                    q.shape()
                ),
            ));
        }
    }
    if let Some(tau) = tau {
        if !(tau > 0.0 && tau.is_finite()) {
            return Err(Error::Config(format!(
                "{OP}: temperature must be a finite number > 0, got {tau}"
            )));
        }
    }
    Ok((rows, d))
}

fn operands<'a>(z: &'a Tensor, queue: Option<&'a Tensor>) -> Vec<&'a Tensor> {
    std::iter::once(z).chain(queue).collect()
}

/// Returns (mean loss of shape [], gradient of that loss w.r.t. `z`).
pub fn ntxent_forward(z: &Tensor, queue: Option<&Tensor>, tau: f64) -> Result<(Tensor, Tensor)> {
    check(z, queue, Some(tau))?;
    on_backend!(OP, slice &operands(z, queue), B => B::ntxent_forward(z, queue, tau))
}

/// Contrastive accuracy: the fraction of the 2N anchors whose positive is *strictly* more
/// similar than every negative (batch and queue). Ties count as misses, so degenerate
/// projections (all rows equal) score 0, not 1. Independent of the temperature.
pub fn ntxent_accuracy(z: &Tensor, queue: Option<&Tensor>) -> Result<f64> {
    ntxent_accuracy_deferred(z, queue)?.read()
}
