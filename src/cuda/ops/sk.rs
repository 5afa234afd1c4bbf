//! Selective-kernel attention (kernels/sk.cu).

use super::{i32a, i64a};
use crate::cuda::module::Launch;
use crate::cuda::storage::{empty, gpu_of, ptr};
use crate::{Result, Tensor};

pub fn sk_pool_forward(u: &Tensor) -> Result<Tensor> {
    let op = "sk_pool_forward";
    let (n, h, w, c2) = u.dims4(op)?;
    let c = c2 / 2;
    let gpu = gpu_of(u, op)?;
    let y = empty(&gpu, &[n, c], u.dtype())?;
    if y.numel() > 0 {
        let args = [ptr(u, op)?, ptr(&y, op)?, i32a(h * w), i32a(c)];
        gpu.launch_typed(op, u.dtype(), Launch::columns(c, n), &args)?;
    }
    Ok(y)
}

pub fn sk_pool_backward(dy: &Tensor, u_shape: &[usize]) -> Result<Tensor> {
    let op = "sk_pool_backward";
    let (h, w, c) = (u_shape[1], u_shape[2], u_shape[3] / 2);
    let gpu = gpu_of(dy, op)?;
    let du = empty(&gpu, u_shape, dy.dtype())?;
    let total = du.numel();
    if total > 0 {
        let args = [
            ptr(dy, op)?,
            ptr(&du, op)?,
            i64a(total),
            i32a(h * w),
            i32a(c),
        ];
        gpu.launch_typed(op, dy.dtype(), Launch::flat(total), &args)?;
    }
    Ok(du)
}

pub fn sk_mix_forward(u: &Tensor, z: &Tensor) -> Result<Tensor> {
    let op = "sk_mix_forward";
    let (n, h, w, c2) = u.dims4(op)?;
    let c = c2 / 2;
    let gpu = gpu_of(u, op)?;
    let y = empty(&gpu, &[n, h, w, c], u.dtype())?;
    let total = y.numel();
    if total > 0 {
        let args = [
            ptr(u, op)?,
            ptr(z, op)?,
            ptr(&y, op)?,
            i64a(total),
            i32a(h * w),
            i32a(c),
        ];
        gpu.launch_typed(op, u.dtype(), Launch::flat(total), &args)?;
    }
    Ok(y)
}

/// Returns (du, dz).
pub fn sk_mix_backward(u: &Tensor, z: &Tensor, dy: &Tensor) -> Result<(Tensor, Tensor)> {
    let op = "sk_mix_backward";
    let (n, h, w, c2) = u.dims4(op)?;
    let c = c2 / 2;
    let gpu = gpu_of(u, op)?;
    let du = empty(&gpu, u.shape(), u.dtype())?;
    let dz = empty(&gpu, z.shape(), z.dtype())?;
    let total = du.numel();
    if total > 0 {
        let args = [
            ptr(z, op)?,
            ptr(dy, op)?,
            ptr(&du, op)?,
            i64a(total),
            i32a(h * w),
            i32a(c),
        ];
        gpu.launch_typed(op, u.dtype(), Launch::flat(total), &args)?;
    }
    if dz.numel() > 0 {
        let args = [
            ptr(u, op)?,
            ptr(z, op)?,
            ptr(dy, op)?,
            ptr(&dz, op)?,
            i32a(h * w),
            i32a(c),
        ];
        gpu.launch_typed(
            "sk_mix_backward_dz",
            u.dtype(),
            Launch::columns(c, n),
            &args,
        )?;
    }
    Ok((du, dz))
}
