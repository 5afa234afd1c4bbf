//! Moving a batch built on the host to the training device: on a GPU through two pinned
//! buffers used in turn ([`crate::cuda::staging::PinnedUploader`]), so the upload is enqueued
//! without the host waiting for the device; on the CPU the batch is used where it is.

use crate::{Device, Result, Tensor};

#[derive(Default)]
pub struct BatchUploader {
    #[cfg(feature = "cuda")]
    pinned: crate::cuda::staging::PinnedUploader,
}

impl BatchUploader {
    pub fn new() -> Self {
        Self::default()
    }

    /// `t` (a CPU tensor) on `device`.
    pub fn put(&mut self, t: Tensor, device: Device) -> Result<Tensor> {
        match device {
            #[cfg(feature = "cuda")]
            Device::Cuda(i) => self.pinned.upload(&t, i),
            _ => t.to_device(device),
        }
    }

    /// `t` (a CPU tensor) copied into the existing CUDA tensor `dst` of the same dtype and
    /// size, without waiting: the fixed input buffer a step replayed as a CUDA graph reads.
    pub fn put_into(&mut self, t: &Tensor, dst: &Tensor) -> Result<()> {
        match dst.device() {
            #[cfg(feature = "cuda")]
            Device::Cuda(_) => self.pinned.upload_into(t, dst),
            d => Err(crate::Error::device(
                "put_into",
                format!(
                    "the destination of a {:?} batch must be a CUDA tensor, not one on {d}",
                    t.shape()
                ),
            )),
        }
    }
}
