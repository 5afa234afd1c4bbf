//! Matrix products through cuBLAS (bf16 or f32 operands, fp32 accumulation: CUBLAS_COMPUTE_32F
//! in the default math mode, so f32 products do not drop to TF32; the handle is the device's,
//! src/cuda/blas.rs), and the bias half of linear layers (kernels/matmul.cu).

use super::MatmulKernels;
use crate::cuda::blas::with_blas;
use crate::cuda::dims::dim;
use crate::cuda::driver::cublas::{self as cublas, *};
use crate::cuda::error::{cuda_err, CudaCall};
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut};
use crate::cuda::module::Launch;
use crate::cuda::storage::{empty, gpu_of, storage, zeros};
use crate::ops::backend::Cuda;
use crate::{DType, Result, Tensor};
use std::ffi::c_void;

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

impl MatmulKernels for Cuda {
    /// Row-major C [m, n] = op(A)·op(B). cuBLAS is column-major, where a row-major matrix reads
    /// as its transpose, so it computes Cᵀ = op(B)ᵀ·op(A)ᵀ.
    #[allow(clippy::too_many_arguments)]
    fn matmul_forward(
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
        let int = |v: usize| {
            i32::try_from(v).map_err(|_| cuda_err(format!("matmul size {v} exceeds i32")))
        };
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
        with_blas(&gpu, |h| unsafe {
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
            .call("cublasGemmEx")
        })?;
        Ok(c)
    }

    fn add_bias_forward(x: &Tensor, b: &Tensor) -> Result<Tensor> {
        let op = "add_bias";
        let gpu = gpu_of(x, op)?;
        let y = empty(&gpu, x.shape(), x.dtype())?;
        let n = x.numel();
        if n > 0 {
            let (n64, c32) = (dim(n, op)?, dim(x.last_dim(), op)?);
            with_dtype!(x.dtype(), op, T => {
                let (xp, bp) = (DevPtr::<T>::of(x, op)?, DevPtr::of(b, op)?);
                let yp = DevPtrMut::of(&y, op)?;
                k::add_bias(&gpu, Launch::flat(n), xp, bp, yp, n64, c32)
            })?;
        }
        Ok(y)
    }

    /// Sum over all rows of x [.., C] → [C].
    fn sum_rows_forward(x: &Tensor) -> Result<Tensor> {
        let op = "sum_rows";
        let gpu = gpu_of(x, op)?;
        let c = x.last_dim();
        let y = empty(&gpu, &[c], x.dtype())?;
        if let Some(rows) = x.numel().checked_div(c) {
            let (rows64, c32) = (dim(rows, op)?, dim(c, op)?);
            with_dtype!(x.dtype(), op, T => {
                let (xp, yp) = (DevPtr::<T>::of(x, op)?, DevPtrMut::of(&y, op)?);
                k::sum_rows(&gpu, Launch::columns(c, 1), xp, yp, rows64, c32)
            })?;
        }
        Ok(y)
    }
}
