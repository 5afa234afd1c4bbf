//! NT-Xent figures that stay where they were computed until someone reads them: on a GPU the
//! contrastive accuracy is a device scalar (the hit count) and the backward scales by the
//! upstream gradient on the device, so a training step waits for the device nowhere; the host
//! reads the figures once per log interval. On the CPU the values are exact f64s as before.

use super::{check, operands, NtXentKernels};
use crate::{on_backend, Result, Tensor};

/// The contrastive accuracy of one batch, not yet read.
#[derive(Clone, Debug)]
pub enum Accuracy {
    /// Computed on the host.
    Value(f64),
    /// Hit count (device scalar) out of `anchors`.
    Hits { count: Tensor, anchors: usize },
}

impl Accuracy {
    /// The fraction of anchors hit (reading a device count waits for it).
    pub fn read(&self) -> Result<f64> {
        match self {
            Accuracy::Value(v) => Ok(*v),
            Accuracy::Hits { count, anchors } => Ok(count.item()? / *anchors as f64),
        }
    }
}

/// [`super::ntxent_accuracy`] without reading it back.
pub fn ntxent_accuracy_deferred(z: &Tensor, queue: Option<&Tensor>) -> Result<Accuracy> {
    check(z, queue, None)?;
    on_backend!("ntxent_accuracy", slice &operands(z, queue), B => B::ntxent_accuracy(z, queue))
}

/// `dz · g` for the upstream gradient `g` (shape []): on a GPU without reading `g` back.
pub fn scale_by_upstream(dz: &Tensor, g: &Tensor) -> Result<Tensor> {
    on_backend!("ntxent_backward", [dz], B => B::scale_by_upstream(dz, g))
}
