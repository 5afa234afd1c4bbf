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
        // Kept for good: not from a graph pool that may be active at the first product.
        let ws = DeviceBuffer::alloc_lasting(gpu, WORKSPACE)?;
        let handle = cublas::create_handle().call("cublasCreate")?;
        // The stream first: cublasSetStream resets the workspace to cuBLAS's own.
        let set = unsafe {
            cublas::set_stream(handle, gpu.cu_stream())
                .call("cublasSetStream")
                .and_then(|_| {
                    cublas::set_workspace(handle, ws.ptr() as *mut c_void, WORKSPACE)
                        .call("cublasSetWorkspace")
                })
                .and_then(|_| {
                    // Default math (no TF32), and split-K partial sums kept in f32: by default
                    // cuBLAS may add them in the output type, rounding each to bf16.
                    let mode = cublasMath_t::CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
                    cublas::set_math_mode(handle, mode).call("cublasSetMathMode")
                })
        };
        if let Err(e) = set {
            // The handle is ours alone; a retry makes a new one.
            let _ = unsafe { cublas::destroy_handle(handle) };
            return Err(e);
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
