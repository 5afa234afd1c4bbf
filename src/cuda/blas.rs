//! Matrix products through cuBLAS: bf16 or f32 operands, fp32 accumulation (CUBLAS_COMPUTE_32F
//! in the default math mode, so f32 products do not drop to TF32).

use super::alloc::DeviceBuffer;
use super::device::Gpu;
use super::driver::cublas::{self as cublas, *};
use super::error::{cuda_err, CudaCall};
use super::storage::{empty, gpu_of, storage, zeros};
use crate::{DType, Result, Tensor};
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

fn data_type(dt: DType) -> Result<cudaDataType> {
    match dt {
        DType::F32 => Ok(cudaDataType::CUDA_R_32F),
        DType::BF16 => Ok(cudaDataType::CUDA_R_16BF),
        d => Err(crate::Error::dtype(
            "matmul",
            format!("cuBLAS path takes f32 or bf16, not {}", d.name()),
        )),
    }
}

/// Row-major C [m, n] = op(A)·op(B). cuBLAS is column-major, where a row-major matrix reads
/// as its transpose, so it computes Cᵀ = op(B)ᵀ·op(A)ᵀ.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    a: &Tensor,
    b: &Tensor,
    ta: bool,
    tb: bool,
    m: usize,
    k: usize,
    n: usize,
) -> Result<Tensor> {
    let op = "matmul";
    let gpu = gpu_of(a, op)?;
    let dt = a.dtype();
    if m * n == 0 || k == 0 {
        return zeros(&gpu, &[m, n], dt);
    }
    let ty = data_type(dt)?;
    let c = empty(&gpu, &[m, n], dt)?;
    let int =
        |v: usize| i32::try_from(v).map_err(|_| cuda_err(format!("matmul size {v} exceeds i32")));
    let (mi, ni, ki) = (int(m)?, int(n)?, int(k)?);
    use cublasOperation_t::{CUBLAS_OP_N, CUBLAS_OP_T};
    let (opa, lda) = if ta {
        (CUBLAS_OP_T, mi)
    } else {
        (CUBLAS_OP_N, ki)
    };
    let (opb, ldb) = if tb {
        (CUBLAS_OP_T, ki)
    } else {
        (CUBLAS_OP_N, ni)
    };
    let (alpha, beta) = (1.0f32, 0.0f32);
    let mut guard = gpu
        .blas
        .lock()
        .map_err(|_| cuda_err("cuBLAS handle poisoned"))?;
    if guard.is_none() {
        *guard = Some(Blas::new(&gpu)?);
    }
    let h = guard
        .as_ref()
        .map(|b| b.handle)
        .ok_or_else(|| cuda_err("no cuBLAS handle"))?;
    unsafe {
        cublas::gemm_ex(
            h,
            opb,
            opa,
            ni,
            mi,
            ki,
            &alpha as *const f32 as *const c_void,
            storage(b, op)?.ptr() as *const c_void,
            ty,
            ldb,
            storage(a, op)?.ptr() as *const c_void,
            ty,
            lda,
            &beta as *const f32 as *const c_void,
            storage(&c, op)?.ptr() as *mut c_void,
            ty,
            ni,
            cublasComputeType_t::CUBLAS_COMPUTE_32F,
            cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
        .call("cublasGemmEx")?;
    }
    Ok(c)
}
