//! CPU kernels of selective-kernel attention; images in parallel.

use super::SkKernels;
use crate::ops::backend::Cpu;
use crate::{float_dispatch, Float, Result, Tensor};
use rayon::prelude::*;

pub fn pool_forward<T: Float>(u: &Tensor) -> Result<Tensor> {
    let (n, h, w, c2) = u.dims4("sk_pool")?;
    let c = c2 / 2;
    let us = u.cpu_slice::<T>("sk_pool")?;
    let inv = T::ONE / T::from_usize(h * w);
    let mut y = vec![T::ZERO; n * c];
    y.par_chunks_mut(c.max(1)).enumerate().for_each(|(i, yi)| {
        for px in us[i * h * w * c2..(i + 1) * h * w * c2].chunks(c2) {
            for j in 0..c {
                yi[j] += px[j] + px[c + j];
            }
        }
        yi.iter_mut().for_each(|v| *v *= inv);
    });
    Tensor::from_vec(y, &[n, c])
}

pub fn pool_backward<T: Float>(dy: &Tensor, u_shape: &[usize]) -> Result<Tensor> {
    let (h, w, c2) = (u_shape[1], u_shape[2], u_shape[3]);
    let c = c2 / 2;
    let dys = dy.cpu_slice::<T>("sk_pool_backward")?;
    let inv = T::ONE / T::from_usize(h * w);
    let mut du = vec![T::ZERO; u_shape.iter().product()];
    du.par_chunks_mut((h * w * c2).max(1))
        .enumerate()
        .for_each(|(i, dui)| {
            let g = &dys[i * c..(i + 1) * c];
            for px in dui.chunks_mut(c2) {
                for j in 0..c {
                    px[j] = g[j] * inv;
                    px[c + j] = g[j] * inv;
                }
            }
        });
    Tensor::from_vec(du, u_shape)
}

/// Softmax over the pair (z0, z1): returns a0 (a1 = 1 − a0), computed stably.
fn weight<T: Float>(z0: T, z1: T) -> T {
    let m = z0.max(z1);
    let (e0, e1) = ((z0 - m).exp(), (z1 - m).exp());
    e0 / (e0 + e1)
}

pub fn mix_forward<T: Float>(u: &Tensor, z: &Tensor) -> Result<Tensor> {
    let (n, h, w, c2) = u.dims4("sk_mix")?;
    let c = c2 / 2;
    let (us, zs) = (u.cpu_slice::<T>("sk_mix")?, z.cpu_slice::<T>("sk_mix")?);
    let mut y = vec![T::ZERO; n * h * w * c];
    y.par_chunks_mut((h * w * c).max(1))
        .enumerate()
        .for_each(|(i, yi)| {
            let zi = &zs[i * c2..(i + 1) * c2];
            let a0: Vec<T> = (0..c).map(|j| weight(zi[j], zi[c + j])).collect();
            for (yp, up) in yi
                .chunks_mut(c)
                .zip(us[i * h * w * c2..(i + 1) * h * w * c2].chunks(c2))
            {
                for j in 0..c {
                    yp[j] = a0[j] * up[j] + (T::ONE - a0[j]) * up[c + j];
                }
            }
        });
    Tensor::from_vec(y, &[n, h, w, c])
}

/// All of du: dy·a0 + ds/hw for u0 and dy·(1 − a0) + ds/hw for u1, either term absent when
/// its gradient is (`mix` = (dy, z)).
pub fn backward_du<T: Float>(
    mix: Option<(&Tensor, &Tensor)>,
    ds: Option<&Tensor>,
    u_shape: &[usize],
) -> Result<Tensor> {
    let op = "sk_backward_du";
    let (hw, c2) = (u_shape[1] * u_shape[2], u_shape[3]);
    let c = c2 / 2;
    let mut du = match ds {
        Some(ds) => pool_backward::<T>(ds, u_shape)?
            .cpu_slice::<T>(op)?
            .to_vec(),
        None => vec![T::ZERO; u_shape.iter().product()],
    };
    if let Some((dy, z)) = mix {
        let (dys, zs) = (dy.cpu_slice::<T>(op)?, z.cpu_slice::<T>(op)?);
        du.par_chunks_mut((hw * c2).max(1))
            .enumerate()
            .for_each(|(i, dui)| {
                let zi = &zs[i * c2..(i + 1) * c2];
                let a0: Vec<T> = (0..c).map(|j| weight(zi[j], zi[c + j])).collect();
                let dyi = &dys[i * hw * c..(i + 1) * hw * c];
                for (dup, gp) in dui.chunks_mut(c2).zip(dyi.chunks(c)) {
                    for j in 0..c {
                        dup[j] += gp[j] * a0[j];
                        dup[c + j] += gp[j] * (T::ONE - a0[j]);
                    }
                }
            });
    }
    Tensor::from_vec(du, u_shape)
}

pub fn mix_backward_dz<T: Float>(u: &Tensor, z: &Tensor, dy: &Tensor) -> Result<Tensor> {
    Ok(mix_backward::<T>(u, z, dy)?.1)
}

pub fn mix_backward<T: Float>(u: &Tensor, z: &Tensor, dy: &Tensor) -> Result<(Tensor, Tensor)> {
    let (n, h, w, c2) = u.dims4("sk_mix_backward")?;
    let c = c2 / 2;
    let (us, zs, dys) = (
        u.cpu_slice::<T>("sk_mix_backward")?,
        z.cpu_slice::<T>("sk_mix_backward")?,
        dy.cpu_slice::<T>("sk_mix_backward")?,
    );
    let mut du = vec![T::ZERO; us.len()];
    let mut dz = vec![T::ZERO; zs.len()];
    du.par_chunks_mut((h * w * c2).max(1))
        .zip(dz.par_chunks_mut(c2.max(1)))
        .enumerate()
        .for_each(|(i, (dui, dzi))| {
            let zi = &zs[i * c2..(i + 1) * c2];
            let a0: Vec<T> = (0..c).map(|j| weight(zi[j], zi[c + j])).collect();
            // s[j] = Σ_hw dy·(u0 − u1): the gradient of y with respect to a0 (a1 = 1 − a0).
            let mut s = vec![T::ZERO; c];
            let ui = &us[i * h * w * c2..(i + 1) * h * w * c2];
            let dyi = &dys[i * h * w * c..(i + 1) * h * w * c];
            for ((dup, up), gp) in dui.chunks_mut(c2).zip(ui.chunks(c2)).zip(dyi.chunks(c)) {
                for j in 0..c {
                    dup[j] = gp[j] * a0[j];
                    dup[c + j] = gp[j] * (T::ONE - a0[j]);
                    s[j] += gp[j] * (up[j] - up[c + j]);
                }
            }
            // da0/dz0 = a0·a1, da0/dz1 = −a0·a1.
            for j in 0..c {
                let d = s[j] * a0[j] * (T::ONE - a0[j]);
                dzi[j] = d;
                dzi[c + j] = -d;
            }
        });
    let _ = n;
    Ok((
        Tensor::from_vec(du, u.shape())?,
        Tensor::from_vec(dz, z.shape())?,
    ))
}

impl SkKernels for Cpu {
    fn sk_pool_forward(u: &Tensor) -> Result<Tensor> {
        float_dispatch!("sk_pool", u.dtype(), pool_forward(u))
    }
    fn sk_pool_backward(ds: &Tensor, u_shape: &[usize]) -> Result<Tensor> {
        float_dispatch!("sk_pool_backward", ds.dtype(), pool_backward(ds, u_shape))
    }
    fn sk_mix_forward(u: &Tensor, z: &Tensor) -> Result<Tensor> {
        float_dispatch!("sk_mix", u.dtype(), mix_forward(u, z))
    }
    fn sk_mix_backward(u: &Tensor, z: &Tensor, dy: &Tensor) -> Result<(Tensor, Tensor)> {
        float_dispatch!("sk_mix_backward", u.dtype(), mix_backward(u, z, dy))
    }
    fn sk_mix_backward_dz(u: &Tensor, z: &Tensor, dy: &Tensor) -> Result<Tensor> {
        float_dispatch!("sk_mix_backward_dz", u.dtype(), mix_backward_dz(u, z, dy))
    }
    fn sk_backward_du(
        mix: Option<(&Tensor, &Tensor)>,
        ds: Option<&Tensor>,
        u_shape: &[usize],
    ) -> Result<Tensor> {
        let dt = mix
            .map(|m| m.0)
            .or(ds)
            .map_or(crate::DType::F32, |t| t.dtype());
        float_dispatch!("sk_backward_du", dt, backward_du(mix, ds, u_shape))
    }
}
