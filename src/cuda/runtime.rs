//! The CUDA runtime as the tensor calls it (`tensor::DeviceRuntime`): a constant made on the
//! device, an upload, a cast. Registered with the tensor when the runtime is first touched
//! (`device::probe`, before any device opens), so every CUDA tensor finds it.

use crate::tensor::{register_runtime, DeviceRuntime};
use crate::{DType, Result, Tensor};

struct Cuda;

impl DeviceRuntime for Cuda {
    fn full(&self, shape: &[usize], v: f64, dtype: DType, ordinal: usize) -> Result<Tensor> {
        super::fill::full(shape, v, dtype, ordinal)
    }
    fn upload(&self, t: &Tensor, ordinal: usize) -> Result<Tensor> {
        super::storage::upload(t, ordinal)
    }
    fn cast(&self, t: &Tensor, dtype: DType) -> Result<Tensor> {
        super::storage::cast(t, dtype)
    }
}

/// Makes this runtime the tensor's device runtime.
pub(crate) fn register() {
    register_runtime(&Cuda);
}
