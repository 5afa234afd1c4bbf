//! Softmax and log-softmax over the last dimension (kernels/softmax.cu), one block per row.

use super::SoftmaxKernels;
use crate::cuda::dims::dim;
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut};
use crate::cuda::module::row_threads;
use crate::cuda::module::Launch;
use crate::cuda::storage::{empty, gpu_of};
use crate::ops::backend::Cuda;
use crate::{Result, Tensor};

fn forward(op: &'static str, log: bool, x: &Tensor) -> Result<Tensor> {
    let gpu = gpu_of(x, op)?;
    let y = empty(&gpu, x.shape(), x.dtype())?;
    let c = x.last_dim();
    let rows = x.numel() / c.max(1);
    if rows > 0 {
        let (cfg, c32) = (Launch::rows(rows, row_threads(c)), dim::<i32>(c, op)?);
        with_dtype!(x.dtype(), op, T => {
            let f = if log { k::log_softmax_forward::<T> } else { k::softmax_forward::<T> };
            f(&gpu, cfg, DevPtr::of(x, op)?, DevPtrMut::of(&y, op)?, c32)
        })?;
    }
    Ok(y)
}

fn backward(op: &'static str, log: bool, y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let gpu = gpu_of(y, op)?;
    let dx = empty(&gpu, y.shape(), y.dtype())?;
    let c = y.last_dim();
    let rows = y.numel() / c.max(1);
    if rows > 0 {
        let (cfg, c32) = (Launch::rows(rows, row_threads(c)), dim::<i32>(c, op)?);
        with_dtype!(y.dtype(), op, T => {
            let f = if log { k::log_softmax_backward::<T> } else { k::softmax_backward::<T> };
            let (yp, dyp) = (DevPtr::of(y, op)?, DevPtr::of(dy, op)?);
            f(&gpu, cfg, yp, dyp, DevPtrMut::of(&dx, op)?, c32)
        })?;
    }
    Ok(dx)
}

impl SoftmaxKernels for Cuda {
    fn softmax_forward(x: &Tensor) -> Result<Tensor> {
        forward("softmax_forward", false, x)
    }

    fn log_softmax_forward(x: &Tensor) -> Result<Tensor> {
        forward("log_softmax_forward", true, x)
    }

    fn softmax_backward(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
        backward("softmax_backward", false, y, dy)
    }

    fn log_softmax_backward(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
        backward("log_softmax_backward", true, y, dy)
    }
}
