//! Selective-kernel attention (kernels/sk.cu): the pool and the mix forward, the logit
//! gradient and all of the input gradient backward, each one launch at its byte floor
//! (src/cuda/traffic_floor.rs).

use super::SkKernels;
use crate::cuda::dims::dim;
use crate::cuda::image_groups::geometry;
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut};
use crate::cuda::storage::{empty, gpu_of};
use crate::cuda::traffic_floor::{self as tf, Family, SkShape};
use crate::ops::backend::Cuda;
use crate::{Error, Result, Tensor};

/// (n, hw, c) of paths u = [n, h, w, 2c], with hw and c as the kernels' `int`s.
fn paths(op: &'static str, u_shape: &[usize]) -> Result<(usize, usize, usize, i32, i32)> {
    let [n, h, w, c2] = u_shape else {
        return Err(Error::shape(
            op,
            format!("paths must be [N, H, W, 2C], got {u_shape:?}"),
        ));
    };
    let (hw, c) = (h * w, c2 / 2);
    Ok((*n, hw, c, dim::<i32>(hw, op)?, dim::<i32>(c, op)?))
}

fn shape(n: usize, hw: usize, c: usize, t: &Tensor) -> SkShape {
    SkShape {
        n,
        hw,
        c,
        e: t.dtype().size_in_bytes(),
    }
}

/// All of the gradient of the paths u (shape `u_shape`) in one launch: the mix's term from
/// `mix` = (dy, z) and the pool's from `ds`, either of which may be absent. `after_dz` says
/// the logit gradient of the same backward already read dy and z (for the byte floor).
fn du_launch(
    mix: Option<(&Tensor, &Tensor)>,
    ds: Option<&Tensor>,
    u_shape: &[usize],
    after_dz: bool,
) -> Result<Tensor> {
    let op = "sk_backward_du";
    let (n, hw, c, hw32, c32) = paths(op, u_shape)?;
    let Some(any) = mix.map(|m| m.0).or(ds) else {
        return Err(Error::shape(op, "neither dy nor ds was given"));
    };
    let gpu = gpu_of(any, op)?;
    let du = empty(&gpu, u_shape, any.dtype())?;
    if du.numel() > 0 {
        let (cfg, chunks) = geometry(op, n, hw, c, 0)?;
        with_dtype!(any.dtype(), op, T => {
            let (zp, dyp) = match mix {
                Some((dy, z)) => (DevPtr::<T>::of(z, op)?, DevPtr::of(dy, op)?),
                None => (DevPtr::null(), DevPtr::null()),
            };
            let dsp = match ds {
                Some(ds) => DevPtr::of(ds, op)?,
                None => DevPtr::null(),
            };
            let dup = DevPtrMut::of(&du, op)?;
            k::sk_backward_du(&gpu, cfg, zp, dyp, dsp, dup, hw32, c32, chunks)
        })?;
        let b = tf::sk_backward_du(shape(n, hw, c, any), mix.is_some(), ds.is_some(), after_dz);
        tf::record(Family::SkBackward, b);
    }
    Ok(du)
}

impl SkKernels for Cuda {
    fn sk_pool_forward(u: &Tensor) -> Result<Tensor> {
        let op = "sk_pool_forward";
        let (n, hw, c, hw32, c32) = paths(op, u.shape())?;
        let gpu = gpu_of(u, op)?;
        let y = empty(&gpu, &[n, c], u.dtype())?;
        if y.numel() > 0 {
            let (cfg, _) = geometry(op, n, hw, c, 1)?;
            with_dtype!(u.dtype(), op, T => {
                let (up, yp) = (DevPtr::<T>::of(u, op)?, DevPtrMut::of(&y, op)?);
                k::sk_pool_forward(&gpu, cfg, up, yp, hw32, c32)
            })?;
            tf::record(Family::SkForward, tf::sk_pool_forward(shape(n, hw, c, u)));
        }
        Ok(y)
    }

    fn sk_pool_backward(ds: &Tensor, u_shape: &[usize]) -> Result<Tensor> {
        du_launch(None, Some(ds), u_shape, false)
    }

    fn sk_mix_forward(u: &Tensor, z: &Tensor) -> Result<Tensor> {
        let op = "sk_mix_forward";
        let (n, hw, c, hw32, c32) = paths(op, u.shape())?;
        let gpu = gpu_of(u, op)?;
        let (_, h, w, _) = u.dims4(op)?;
        let y = empty(&gpu, &[n, h, w, c], u.dtype())?;
        if y.numel() > 0 {
            let (cfg, chunks) = geometry(op, n, hw, c, 0)?;
            with_dtype!(u.dtype(), op, T => {
                let (up, zp) = (DevPtr::<T>::of(u, op)?, DevPtr::of(z, op)?);
                let yp = DevPtrMut::of(&y, op)?;
                k::sk_mix_forward(&gpu, cfg, up, zp, yp, hw32, c32, chunks)
            })?;
            tf::record(Family::SkForward, tf::sk_mix_forward(shape(n, hw, c, u)));
        }
        Ok(y)
    }

    /// Returns (du, dz).
    fn sk_mix_backward(u: &Tensor, z: &Tensor, dy: &Tensor) -> Result<(Tensor, Tensor)> {
        let dz = Self::sk_mix_backward_dz(u, z, dy)?;
        let du = du_launch(Some((dy, z)), None, u.shape(), true)?;
        Ok((du, dz))
    }

    /// The gradient of the mixing logits: dz = Σ_hw dy·(u0 − u1) · a0·(1 − a0), with the sign
    /// flipped for z1.
    fn sk_mix_backward_dz(u: &Tensor, z: &Tensor, dy: &Tensor) -> Result<Tensor> {
        let op = "sk_mix_backward_dz";
        let (n, hw, c, hw32, c32) = paths(op, u.shape())?;
        let gpu = gpu_of(u, op)?;
        let dz = empty(&gpu, z.shape(), z.dtype())?;
        if dz.numel() > 0 {
            let (cfg, _) = geometry(op, n, hw, c, 1)?;
            with_dtype!(u.dtype(), op, T => {
                let (up, zp) = (DevPtr::<T>::of(u, op)?, DevPtr::of(z, op)?);
                let (dyp, dzp) = (DevPtr::of(dy, op)?, DevPtrMut::of(&dz, op)?);
                k::sk_mix_backward_dz(&gpu, cfg, up, zp, dyp, dzp, hw32, c32)
            })?;
            tf::record(Family::SkBackward, tf::sk_backward_dz(shape(n, hw, c, u)));
        }
        Ok(dz)
    }

    /// All of du, the mix's term (when given) after its logit gradient read dy and z.
    fn sk_backward_du(
        mix: Option<(&Tensor, &Tensor)>,
        ds: Option<&Tensor>,
        u_shape: &[usize],
    ) -> Result<Tensor> {
        du_launch(mix, ds, u_shape, mix.is_some())
    }
}
