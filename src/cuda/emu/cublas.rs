//! Emulated cuBLAS. (Skeleton: filled in by the emulated libraries.)

use crate::cuda::driver::cu::CUstream;
use crate::cuda::driver::cublas::{
    cublasComputeType_t, cublasGemmAlgo_t, cublasHandle_t, cublasMath_t, cublasOperation_t,
    cublasStatus_t, cudaDataType, BlasError, Result,
};
use std::ffi::c_void;

fn todo(what: &str) -> BlasError {
    BlasError::new(
        cublasStatus_t::CUBLAS_STATUS_NOT_SUPPORTED,
        format!("{what} is not emulated yet"),
    )
}

pub fn create_handle() -> Result<cublasHandle_t> {
    Err(todo("cublasCreate"))
}
/// # Safety
/// A handle from [`create_handle`].
pub unsafe fn set_stream(_handle: cublasHandle_t, _stream: CUstream) -> Result<()> {
    Err(todo("cublasSetStream"))
}
/// # Safety
/// A handle from [`create_handle`].
pub unsafe fn set_workspace(
    _handle: cublasHandle_t,
    _workspace: *mut c_void,
    _bytes: usize,
) -> Result<()> {
    Err(todo("cublasSetWorkspace"))
}
/// # Safety
/// A handle from [`create_handle`].
pub unsafe fn set_math_mode(_handle: cublasHandle_t, _mode: cublasMath_t) -> Result<()> {
    Err(todo("cublasSetMathMode"))
}
/// # Safety
/// As `cublasGemmEx`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_ex(
    _handle: cublasHandle_t,
    _transa: cublasOperation_t,
    _transb: cublasOperation_t,
    _m: i32,
    _n: i32,
    _k: i32,
    _alpha: *const c_void,
    _a: *const c_void,
    _a_type: cudaDataType,
    _lda: i32,
    _b: *const c_void,
    _b_type: cudaDataType,
    _ldb: i32,
    _beta: *const c_void,
    _c: *mut c_void,
    _c_type: cudaDataType,
    _ldc: i32,
    _compute: cublasComputeType_t,
    _algo: cublasGemmAlgo_t,
) -> Result<()> {
    Err(todo("cublasGemmEx"))
}
