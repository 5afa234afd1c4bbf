//! The cuBLAS calls the backend makes (one handle per device, one GEMM entry point).

use super::counters::{self as c, bump};
use super::route;
use cudarc::cublas::{result, sys};
use std::ffi::c_void;

pub use sys::{
    cublasComputeType_t, cublasGemmAlgo_t, cublasHandle_t, cublasMath_t, cublasOperation_t,
    cublasStatus_t, cudaDataType,
};

/// A failed cuBLAS call: its status, and what the emulated library found (empty on a GPU).
#[derive(Clone)]
pub struct BlasError {
    pub status: cublasStatus_t,
    pub detail: String,
}

impl BlasError {
    pub fn new(status: cublasStatus_t, detail: impl Into<String>) -> Self {
        BlasError {
            status,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Debug for BlasError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{:?}", self.status)
        } else {
            write!(f, "{:?}: {}", self.status, self.detail)
        }
    }
}

pub type Result<T> = std::result::Result<T, BlasError>;

fn real<T>(r: std::result::Result<T, result::CublasError>) -> Result<T> {
    r.map_err(|e| BlasError::new(e.0, ""))
}

pub fn is_present() -> bool {
    route!(real => unsafe { sys::is_culib_present() }, emu => true)
}

pub fn create_handle() -> Result<cublasHandle_t> {
    route!(
        real => real(result::create_handle()),
        emu => crate::cuda::emu::cublas::create_handle(),
    )
}

/// # Safety
/// A live handle, not used after this.
pub unsafe fn destroy_handle(handle: cublasHandle_t) -> Result<()> {
    route!(
        real => real(result::destroy_handle(handle)),
        emu => crate::cuda::emu::cublas::destroy_handle(handle),
    )
}

/// # Safety
/// A live handle and stream.
pub unsafe fn set_stream(handle: cublasHandle_t, stream: super::cu::CUstream) -> Result<()> {
    route!(
        real => real(result::set_stream(handle, stream as sys::cudaStream_t)),
        emu => crate::cuda::emu::cublas::set_stream(handle, stream),
    )
}

/// # Safety
/// `workspace` is device memory of `bytes` bytes that outlives the handle's use of it.
pub unsafe fn set_workspace(
    handle: cublasHandle_t,
    workspace: *mut c_void,
    bytes: usize,
) -> Result<()> {
    route!(
        real => real(sys::cublasSetWorkspace_v2(handle, workspace, bytes).result()),
        emu => crate::cuda::emu::cublas::set_workspace(handle, workspace, bytes),
    )
}

/// # Safety
/// A live handle.
pub unsafe fn set_math_mode(handle: cublasHandle_t, mode: cublasMath_t) -> Result<()> {
    route!(
        real => real(sys::cublasSetMathMode(handle, mode).result()),
        emu => crate::cuda::emu::cublas::set_math_mode(handle, mode),
    )
}

/// `cublasGemmEx`: C = α·op(A)·op(B) + β·C, column-major.
///
/// # Safety
/// The pointers are device memory of the sizes the dimensions and leading dimensions imply;
/// `alpha` and `beta` point at host scalars of the compute type.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_ex(
    handle: cublasHandle_t,
    transa: cublasOperation_t,
    transb: cublasOperation_t,
    m: i32,
    n: i32,
    k: i32,
    alpha: *const c_void,
    a: *const c_void,
    a_type: cudaDataType,
    lda: i32,
    b: *const c_void,
    b_type: cudaDataType,
    ldb: i32,
    beta: *const c_void,
    c: *mut c_void,
    c_type: cudaDataType,
    ldc: i32,
    compute: cublasComputeType_t,
    algo: cublasGemmAlgo_t,
) -> Result<()> {
    bump(&c::LIBRARY_CALLS, 1);
    route!(
        real => real(
            sys::cublasGemmEx(
                handle, transa, transb, m, n, k, alpha, a, a_type, lda, b, b_type, ldb, beta, c,
                c_type, ldc, compute, algo,
            )
            .result()
        ),
        emu => crate::cuda::emu::cublas::gemm_ex(
            handle, transa, transb, m, n, k, alpha, a, a_type, lda, b, b_type, ldb, beta, c,
            c_type, ldc, compute, algo,
        ),
    )
}
