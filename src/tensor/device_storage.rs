//! A tensor's storage on an accelerator, as the tensor sees it: the CUDA runtime one floor up
//! (`src/cuda`) implements [`DeviceStorage`] for its allocations and [`DeviceRuntime`] for what
//! needs the runtime without a device tensor in hand (a constant made on the device, an upload,
//! a cast), and registers the runtime when it is first touched. The tensor only knows these two
//! traits, so it imports nothing from above its floor.

use super::{CpuStorage, DType, Device, Tensor};
use crate::{Error, Result};
use std::any::Any;
use std::fmt;
use std::sync::OnceLock;

/// Elements held on a device. Clones are cheap and share the allocation; an implementation
/// that writes in place copies a shared allocation first (copy-on-write), so a clone never
/// sees another tensor's writes.
pub trait DeviceStorage: Send + Sync + fmt::Debug + Any {
    /// The device holding the elements.
    fn device(&self) -> Device;
    fn dtype(&self) -> DType;
    /// The number of elements.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A copy on the host (waits for the device).
    fn to_cpu(&self) -> Result<CpuStorage>;
    /// A clone sharing the allocation.
    fn clone_box(&self) -> Box<dyn DeviceStorage>;
    /// For the runtime that made it: its own type back (`downcast_ref`).
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl Clone for Box<dyn DeviceStorage> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// What the tensor asks of the device runtime when no device tensor is at hand to ask.
pub trait DeviceRuntime: Send + Sync {
    /// A tensor of `shape` filled with `v` (rounded to `dtype` as on the CPU) on device `ordinal`.
    fn full(&self, shape: &[usize], v: f64, dtype: DType, ordinal: usize) -> Result<Tensor>;
    /// A copy of `t` (on the CPU or another device) on device `ordinal`, keeping its dtype.
    fn upload(&self, t: &Tensor, ordinal: usize) -> Result<Tensor>;
    /// Device tensor `t` converted to `dtype` on its device.
    fn cast(&self, t: &Tensor, dtype: DType) -> Result<Tensor>;
}

static RUNTIME: OnceLock<&'static dyn DeviceRuntime> = OnceLock::new();

/// Makes `runtime` the one the tensor calls for device tensors (the first registration stays:
/// a process has one device runtime).
pub fn register_runtime(runtime: &'static dyn DeviceRuntime) {
    RUNTIME.get_or_init(|| runtime);
}

/// The registered device runtime, or an error for `op` saying there is none.
pub(crate) fn runtime(op: &'static str) -> Result<&'static dyn DeviceRuntime> {
    RUNTIME.get().copied().ok_or_else(|| {
        Error::device(
            op,
            "this build/process has no CUDA runtime registered; resolve the device with \
             DeviceRequest::resolve or build with --features cuda",
        )
    })
}

#[cfg(all(test, not(feature = "cuda")))]
mod tests {
    use super::*;

    #[test]
    fn without_a_registered_runtime_device_tensors_are_refused_clearly() {
        let cpu = Tensor::zeros(&[2], DType::F32, Device::Cpu).unwrap();
        let errors = [
            Tensor::zeros(&[2], DType::F32, Device::Cuda(0)).unwrap_err(),
            Tensor::full(&[2], 1.0, DType::F32, Device::Cuda(0)).unwrap_err(),
            cpu.to_device(Device::Cuda(0)).unwrap_err(),
        ];
        for e in errors {
            let msg = e.to_string();
            assert!(msg.contains("no CUDA runtime registered"), "{msg}");
        }
    }
}
