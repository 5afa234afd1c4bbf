//! Emulated cuBLAS: a handle is a live object (stream, workspace, math mode); `cublasGemmEx`
//! checks its arguments as cuBLAS documents them and computes the product as the definition
//! reads, summed in f64 (no code shared with the CPU backend's GEMM).
//!
//! Rules enforced (cuBLAS 13 documentation of cublasGemmEx, cublasSetWorkspace):
//! - a handle not created (or destroyed) is `NOT_INITIALIZED`;
//! - `cublasSetStream` sets the workspace back to the library's own (cuBLAS documents that it
//!   "unconditionally resets the cuBLAS library workspace back to the default workspace pool");
//! - `cublasSetWorkspace`: the pointer aligned to 256 bytes (`INVALID_VALUE`), non-null when the
//!   size is nonzero; the range must lie in device memory (`check_write`, used as scratch by
//!   every GEMM, as the real library may);
//! - transa/transb N, T or C (C equals T for real types); m, n, k ≥ 0 (`INVALID_VALUE`);
//! - lda ≥ max(1, m) when transa = N else max(1, k); ldb ≥ max(1, k) when transb = N else
//!   max(1, n); ldc ≥ max(1, m) (`INVALID_VALUE`);
//! - (computeType, Atype = Btype, Ctype) in the documented table for CUBLAS_COMPUTE_32F (and
//!   _PEDANTIC): 16BF/16BF, 16BF/32F, 16F/16F, 16F/32F, 32F/32F; 32F_FAST_16F, _FAST_16BF and
//!   _FAST_TF32 with 32F/32F; CUBLAS_COMPUTE_64F with 64F/64F. 8I inputs (also in the table) are
//!   not emulated. Any other combination: `NOT_SUPPORTED`. The fast modes (and 32F compute
//!   under CUBLAS_TF32_TENSOR_OP_MATH) round the f32 inputs to TF32, bf16 or f16 first: the
//!   emulation takes the reduced precision they permit;
//! - α, β host scalars of the scale type (float, double for 64F) non-null (`INVALID_VALUE`);
//! - these argument checks are made at the call, during a graph capture too (the captured
//!   product then reads and writes memory at each replay);
//! - A, B non-null when m·n·k > 0, C non-null when m·n > 0 (`INVALID_VALUE`);
//! - exact extents: a stored matrix of r rows and c columns with leading dimension ld spans
//!   (c − 1)·ld + r elements; A and B are read (`check_read`), C is read only when β ≠ 0 and
//!   written over its m×n elements column by column (gaps between columns untouched).
//!
//! Numerics: f32 accumulation (f64 for 64F), 16-bit inputs widened exactly,
//! C = α·op(A)·op(B) + β·C computed in the compute type and rounded once to Ctype (nearest-even). k = 0 gives
//! C = β·C. A memory check failing is `EXECUTION_FAILED`. Unless the handle's math mode is
//! CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION, a 16-bit C gets the worst case cuBLAS's
//! default allows: split-K partial sums of `gemm::SPLIT_K` terms, each rounded to Ctype.

#![allow(clippy::too_many_arguments)]

mod gemm;

pub use gemm::SPLIT_K;

use super::graph;
use super::registry::Registry;
use crate::cuda::driver::cu::CUstream;
use crate::cuda::driver::cublas::{
    cublasComputeType_t, cublasGemmAlgo_t, cublasHandle_t, cublasMath_t, cublasOperation_t,
    cublasStatus_t, cudaDataType, BlasError, Result,
};
use std::ffi::c_void;

/// Bytes of the workspace a GEMM uses as scratch (capped by what was set).
pub const GEMM_SCRATCH: usize = 1 << 20;

pub struct Handle {
    pub stream: usize,
    pub workspace: (u64, usize),
    pub math: cublasMath_t,
}

pub static HANDLES: Registry<Handle> = Registry::new();

pub fn invalid(detail: impl Into<String>) -> BlasError {
    BlasError::new(cublasStatus_t::CUBLAS_STATUS_INVALID_VALUE, detail)
}

/// Runs `f` on a live handle; `NOT_INITIALIZED` otherwise.
pub fn with_handle<R>(h: cublasHandle_t, f: impl FnOnce(&mut Handle) -> R) -> Result<R> {
    HANDLES
        .with(h as usize, f)
        .map_err(|e| BlasError::new(cublasStatus_t::CUBLAS_STATUS_INTERNAL_ERROR, e))?
        .ok_or_else(|| {
            BlasError::new(
                cublasStatus_t::CUBLAS_STATUS_NOT_INITIALIZED,
                format!("handle {:#x} is not a live cuBLAS handle", h as usize),
            )
        })
}

pub fn create_handle() -> Result<cublasHandle_t> {
    let h = Handle {
        stream: 0,
        workspace: (0, 0),
        math: cublasMath_t::CUBLAS_DEFAULT_MATH,
    };
    HANDLES
        .insert(h)
        .map(|a| a as cublasHandle_t)
        .map_err(|e| BlasError::new(cublasStatus_t::CUBLAS_STATUS_ALLOC_FAILED, e))
}
/// # Safety
/// A handle from [`create_handle`].
pub unsafe fn destroy_handle(handle: cublasHandle_t) -> Result<()> {
    with_handle(handle, |_| ())?;
    HANDLES
        .remove(handle as usize)
        .map(drop)
        .map_err(|e| BlasError::new(cublasStatus_t::CUBLAS_STATUS_INTERNAL_ERROR, e))
}
/// cublasSetStream, which also sets the workspace back to cuBLAS's own (none here), as the
/// real one does: a workspace must be set again after it.
///
/// # Safety
/// A handle from [`create_handle`].
pub unsafe fn set_stream(handle: cublasHandle_t, stream: CUstream) -> Result<()> {
    with_handle(handle, |h| {
        h.stream = stream as usize;
        h.workspace = (0, 0);
    })
}
/// # Safety
/// A handle from [`create_handle`].
pub unsafe fn set_workspace(
    handle: cublasHandle_t,
    workspace: *mut c_void,
    bytes: usize,
) -> Result<()> {
    with_handle(handle, |_| ())?;
    let addr = workspace as u64;
    if addr % 256 != 0 {
        return Err(invalid(format!(
            "cublasSetWorkspace: workspace {addr:#x} is not aligned to 256 bytes"
        )));
    }
    if addr == 0 && bytes > 0 {
        return Err(invalid(format!(
            "cublasSetWorkspace: workspace is null with workspaceSizeInBytes = {bytes}"
        )));
    }
    if bytes > 0 {
        crate::cuda::emu::memory::check_write(addr, bytes, "cublasSetWorkspace workspace")
            .map_err(|e| BlasError::new(cublasStatus_t::CUBLAS_STATUS_EXECUTION_FAILED, e))?;
    }
    with_handle(handle, |h| h.workspace = (addr, bytes))
}
/// # Safety
/// A handle from [`create_handle`].
pub unsafe fn set_math_mode(handle: cublasHandle_t, mode: cublasMath_t) -> Result<()> {
    with_handle(handle, |h| h.math = mode)
}
/// # Safety
/// As `cublasGemmEx`.
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
    _algo: cublasGemmAlgo_t,
) -> Result<()> {
    let (ws, stream, math) = with_handle(handle, |h| (h.workspace, h.stream, h.math))?;
    let _op = crate::cuda::emu::order::op(stream as CUstream, c"cublasGemmEx");
    let call = gemm::Call {
        ta: gemm::transposed(transa)?,
        tb: gemm::transposed(transb)?,
        m,
        n,
        k,
        a: (a as u64, a_type, lda),
        b: (b as u64, b_type, ldb),
        c: (c as u64, c_type, ldc),
        compute,
        tf32_math: math == cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH,
        reduced_reduction: math != cublasMath_t::CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION,
    };
    if graph::capturing() {
        // cuBLAS checks the arguments at the call, capturing or not.
        gemm::check(&call, alpha, beta)?;
        // α and β are read at capture, as cuBLAS does in host pointer mode.
        let (_, _, wide) = gemm::types(&call)?;
        let bytes = if wide { 8 } else { 4 };
        let (al, be) = (
            graph::host_scalar(alpha, bytes),
            graph::host_scalar(beta, bytes),
        );
        return graph::run_or_record(Box::new(move || {
            gemm::run(&call, graph::scalar_ptr(&al), graph::scalar_ptr(&be), ws)
                .map_err(|e| format!("{e:?}"))
        }))
        .map_err(|m| BlasError::new(cublasStatus_t::CUBLAS_STATUS_EXECUTION_FAILED, m));
    }
    gemm::run(&call, alpha, beta, ws)
}
