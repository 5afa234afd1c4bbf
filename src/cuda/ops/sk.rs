//! Selective-kernel attention (kernels/sk.cu).

use crate::cuda::dims::dim;
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut};
use crate::cuda::module::Launch;
use crate::cuda::storage::{empty, gpu_of};
use crate::{Result, Tensor};

pub fn sk_pool_forward(u: &Tensor) -> Result<Tensor> {
    let op = "sk_pool_forward";
    let (n, h, w, c2) = u.dims4(op)?;
    let c = c2 / 2;
    let gpu = gpu_of(u, op)?;
    let y = empty(&gpu, &[n, c], u.dtype())?;
    if y.numel() > 0 {
        let (hw, c32) = (dim::<i32>(h * w, op)?, dim::<i32>(c, op)?);
        with_dtype!(u.dtype(), op, T => {
            let (up, yp) = (DevPtr::<T>::of(u, op)?, DevPtrMut::of(&y, op)?);
            k::sk_pool_forward(&gpu, Launch::columns(c, n), up, yp, hw, c32)
        })?;
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
        let (t64, hw, c32) = (
            dim::<i64>(total, op)?,
            dim::<i32>(h * w, op)?,
            dim::<i32>(c, op)?,
        );
        with_dtype!(dy.dtype(), op, T => {
            let (dyp, dup) = (DevPtr::<T>::of(dy, op)?, DevPtrMut::of(&du, op)?);
            k::sk_pool_backward(&gpu, Launch::flat(total), dyp, dup, t64, hw, c32)
        })?;
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
        let (t64, hw, c32) = (
            dim::<i64>(total, op)?,
            dim::<i32>(h * w, op)?,
            dim::<i32>(c, op)?,
        );
        with_dtype!(u.dtype(), op, T => {
            let (up, zp) = (DevPtr::<T>::of(u, op)?, DevPtr::of(z, op)?);
            let yp = DevPtrMut::of(&y, op)?;
            k::sk_mix_forward(&gpu, Launch::flat(total), up, zp, yp, t64, hw, c32)
        })?;
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
    let (hw, c32) = (dim::<i32>(h * w, op)?, dim::<i32>(c, op)?);
    if total > 0 {
        let t64 = dim::<i64>(total, op)?;
        with_dtype!(u.dtype(), op, T => {
            let (zp, dyp) = (DevPtr::<T>::of(z, op)?, DevPtr::of(dy, op)?);
            let dup = DevPtrMut::of(&du, op)?;
            k::sk_mix_backward(&gpu, Launch::flat(total), zp, dyp, dup, t64, hw, c32)
        })?;
    }
    if dz.numel() > 0 {
        with_dtype!(u.dtype(), op, T => {
            let (up, zp) = (DevPtr::<T>::of(u, op)?, DevPtr::of(z, op)?);
            let (dyp, dzp) = (DevPtr::of(dy, op)?, DevPtrMut::of(&dz, op)?);
            k::sk_mix_backward_dz(&gpu, Launch::columns(c, n), up, zp, dyp, dzp, hw, c32)
        })?;
    }
    Ok((du, dz))
}
