//! Row-wise L2 normalisation (kernels/normalize.cu), one block per row.

use super::NormalizeKernels;
use super::L2_EPS;
use crate::cuda::dims::dim;
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut};
use crate::cuda::module::row_threads;
use crate::cuda::module::Launch;
use crate::cuda::storage::{empty, gpu_of};
use crate::ops::backend::Cuda;
use crate::{Result, Tensor};

impl NormalizeKernels for Cuda {
    fn l2_normalize_forward(x: &Tensor) -> Result<Tensor> {
        let op = "l2_normalize_forward";
        let gpu = gpu_of(x, op)?;
        let y = empty(&gpu, x.shape(), x.dtype())?;
        let c = x.last_dim();
        let rows = x.numel() / c.max(1);
        if rows > 0 {
            let (cfg, c32) = (Launch::rows(rows, row_threads(c)), dim::<i32>(c, op)?);
            with_dtype!(x.dtype(), op, T => {
                let (xp, yp) = (DevPtr::<T>::of(x, op)?, DevPtrMut::of(&y, op)?);
                k::l2_normalize_forward(&gpu, cfg, xp, yp, c32, L2_EPS as f32)
            })?;
        }
        Ok(y)
    }

    fn l2_normalize_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
        let op = "l2_normalize_backward";
        let gpu = gpu_of(x, op)?;
        let dx = empty(&gpu, x.shape(), x.dtype())?;
        let c = x.last_dim();
        let rows = x.numel() / c.max(1);
        if rows > 0 {
            let (cfg, c32) = (Launch::rows(rows, row_threads(c)), dim::<i32>(c, op)?);
            with_dtype!(x.dtype(), op, T => {
                let (xp, dyp) = (DevPtr::<T>::of(x, op)?, DevPtr::of(dy, op)?);
                let dxp = DevPtrMut::of(&dx, op)?;
                k::l2_normalize_backward(&gpu, cfg, xp, dyp, dxp, c32, L2_EPS as f32)
            })?;
        }
        Ok(dx)
    }
}
