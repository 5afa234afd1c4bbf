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
}
