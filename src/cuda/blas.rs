//! The device's cuBLAS handle, on the device's stream with a fixed workspace, created on first
//! use. The products themselves are the matmul op's launcher (src/ops/matmul/cuda.rs).

use super::alloc::DeviceBuffer;
use super::device::Gpu;
use super::driver::cublas::{self as cublas, *};
use super::error::{cuda_err, CudaCall};
use crate::Result;
use std::ffi::c_void;
use std::sync::Arc;

/// cuBLAS workspace, given once so cuBLAS never allocates during a step.
const WORKSPACE: usize = 32 << 20;

pub struct Blas {
    handle: cublasHandle_t,
    _workspace: DeviceBuffer,
}

// The handle is used only under the device's mutex.
unsafe impl Send for Blas {}

impl Blas {
    fn new(gpu: &Arc<Gpu>) -> Result<Self> {
        let handle = cublas::create_handle().call("cublasCreate")?;
        let ws = DeviceBuffer::alloc(gpu, WORKSPACE)?;
        unsafe {
            cublas::set_stream(handle, gpu.cu_stream()).call("cublasSetStream")?;
            cublas::set_workspace(handle, ws.ptr() as *mut c_void, WORKSPACE)
                .call("cublasSetWorkspace")?;
            cublas::set_math_mode(handle, cublasMath_t::CUBLAS_DEFAULT_MATH)
                .call("cublasSetMathMode")?;
        }
        Ok(Blas {
            handle,
            _workspace: ws,
        })
    }
}

/// Runs `f` with the device's cuBLAS handle (created on first use), under the device's lock.
pub(crate) fn with_blas<R>(
    gpu: &Arc<Gpu>,
    f: impl FnOnce(cublasHandle_t) -> Result<R>,
) -> Result<R> {
    let mut guard = gpu
        .blas
        .lock()
        .map_err(|_| cuda_err("cuBLAS handle poisoned"))?;
    if guard.is_none() {
        *guard = Some(Blas::new(gpu)?);
    }
    let h = guard
        .as_ref()
        .map(|b| b.handle)
        .ok_or_else(|| cuda_err("no cuBLAS handle"))?;
    f(h)
}
