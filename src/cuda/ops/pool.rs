//! Pooling over NHWC (kernels/pool.cu).

use super::{i32a, i64a};
use crate::cuda::module::Launch;
use crate::cuda::storage::{empty, gpu_of, ptr};
use crate::ops::pool::PoolSpec;
use crate::{Result, Tensor};

pub fn max_pool2d_forward(x: &Tensor, s: &PoolSpec, ho: usize, wo: usize) -> Result<Tensor> {
    let op = "max_pool2d_forward";
    let (n, h, w, c) = x.dims4(op)?;
    let gpu = gpu_of(x, op)?;
    let y = empty(&gpu, &[n, ho, wo, c], x.dtype())?;
    if y.numel() > 0 {
        let args = [
            ptr(x, op)?,
            ptr(&y, op)?,
            i32a(n),
            i32a(h),
            i32a(w),
            i32a(c),
            i32a(s.kernel),
            i32a(s.stride),
            i32a(s.padding),
            i32a(ho),
            i32a(wo),
        ];
        gpu.launch_typed(op, x.dtype(), Launch::flat(y.numel()), &args)?;
    }
    Ok(y)
}

pub fn max_pool2d_backward(x: &Tensor, dy: &Tensor, s: &PoolSpec) -> Result<Tensor> {
    let op = "max_pool2d_backward";
    let (n, h, w, c) = x.dims4(op)?;
    let (_, ho, wo, _) = dy.dims4(op)?;
    let gpu = gpu_of(x, op)?;
    let dx = empty(&gpu, x.shape(), x.dtype())?;
    if dx.numel() > 0 {
        let args = [
            ptr(x, op)?,
            ptr(dy, op)?,
            ptr(&dx, op)?,
            i32a(n),
            i32a(h),
            i32a(w),
            i32a(c),
            i32a(s.kernel),
            i32a(s.stride),
            i32a(s.padding),
            i32a(ho),
            i32a(wo),
        ];
        gpu.launch_typed(op, x.dtype(), Launch::flat(dx.numel()), &args)?;
    }
    Ok(dx)
}

pub fn avg_pool2x2_forward(x: &Tensor, stride: usize, ho: usize, wo: usize) -> Result<Tensor> {
    let op = "avg_pool2x2_forward";
    let (n, h, w, c) = x.dims4(op)?;
    let gpu = gpu_of(x, op)?;
    let y = empty(&gpu, &[n, ho, wo, c], x.dtype())?;
    if y.numel() > 0 {
        let args = [
            ptr(x, op)?,
            ptr(&y, op)?,
            i32a(n),
            i32a(h),
            i32a(w),
            i32a(c),
            i32a(stride),
            i32a(ho),
            i32a(wo),
        ];
        gpu.launch_typed(op, x.dtype(), Launch::flat(y.numel()), &args)?;
    }
    Ok(y)
}

pub fn avg_pool2x2_backward(dy: &Tensor, stride: usize, x_shape: &[usize]) -> Result<Tensor> {
    let op = "avg_pool2x2_backward";
    let (n, ho, wo, c) = dy.dims4(op)?;
    let (h, w) = (x_shape[1], x_shape[2]);
    let gpu = gpu_of(dy, op)?;
    let dx = empty(&gpu, x_shape, dy.dtype())?;
    if dx.numel() > 0 {
        let args = [
            ptr(dy, op)?,
            ptr(&dx, op)?,
            i32a(n),
            i32a(h),
            i32a(w),
            i32a(c),
            i32a(stride),
            i32a(ho),
            i32a(wo),
        ];
        gpu.launch_typed(op, dy.dtype(), Launch::flat(dx.numel()), &args)?;
    }
    Ok(dx)
}

pub fn global_avg_pool_forward(x: &Tensor) -> Result<Tensor> {
    let op = "global_avg_pool_forward";
    let (n, h, w, c) = x.dims4(op)?;
    let gpu = gpu_of(x, op)?;
    let y = empty(&gpu, &[n, c], x.dtype())?;
    if y.numel() > 0 {
        let args = [ptr(x, op)?, ptr(&y, op)?, i32a(h * w), i32a(c)];
        gpu.launch_typed(op, x.dtype(), Launch::columns(c, n), &args)?;
    }
    Ok(y)
}

pub fn global_avg_pool_backward(dy: &Tensor, x_shape: &[usize]) -> Result<Tensor> {
    let op = "global_avg_pool_backward";
    let (h, w, c) = (x_shape[1], x_shape[2], x_shape[3]);
    let gpu = gpu_of(dy, op)?;
    let dx = empty(&gpu, x_shape, dy.dtype())?;
    let total = dx.numel();
    if total > 0 {
        let args = [
            ptr(dy, op)?,
            ptr(&dx, op)?,
            i64a(total),
            i32a(h * w),
            i32a(c),
        ];
        gpu.launch_typed(op, dy.dtype(), Launch::flat(total), &args)?;
    }
    Ok(dx)
}
