//! Pooling over NHWC (kernels/pool.cu). Every pool runs in W-channel groups (8 channels and
//! 16-byte accesses per thread when C % 8 == 0, src/cuda/groups.rs `width`); bytes per launch:
//! src/cuda/traffic_floor.rs.

use super::PoolKernels;
use super::{AvgPoolSpec, PoolSpec};
use crate::cuda::dims::dim;
use crate::cuda::groups::width;
use crate::cuda::image_groups::geometry;
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut};
use crate::cuda::module::Launch;
use crate::cuda::storage::{empty, gpu_of};
use crate::cuda::traffic_floor::{self as tf, Family};
use crate::ops::backend::Cuda;
use crate::{Result, Tensor};

/// The window as the kernels' `int`s: (kernel, stride, leading padding along H, along W).
fn window(op: &'static str, s: &PoolSpec) -> Result<[i32; 4]> {
    Ok([
        dim::<i32>(s.kernel, op)?,
        dim::<i32>(s.stride, op)?,
        dim::<i32>(s.pad_h.0, op)?,
        dim::<i32>(s.pad_w.0, op)?,
    ])
}

/// (n, h, w, c) as the kernels' `int`s.
fn nhwc(op: &'static str, n: usize, h: usize, w: usize, c: usize) -> Result<[i32; 4]> {
    Ok([
        dim::<i32>(n, op)?,
        dim::<i32>(h, op)?,
        dim::<i32>(w, op)?,
        dim::<i32>(c, op)?,
    ])
}

/// Elements an average pool reads in the forward (or dy elements its backward gathers): the
/// in-image cells of every window, for every image and channel.
fn window_cells(x: &[usize], s: &AvgPoolSpec, y: &[usize]) -> usize {
    let axis = |len: usize, pad: usize, out: usize| -> usize {
        let (k, st) = (s.window.kernel, s.window.stride);
        (0..out)
            .map(|o| {
                let start = (o * st) as isize - pad as isize;
                let (lo, hi) = (start.max(0), (start + k as isize).min(len as isize));
                (hi - lo).max(0) as usize
            })
            .sum()
    };
    let rows = axis(x[1], s.window.pad_h.0, y[1]);
    let cols = axis(x[2], s.window.pad_w.0, y[2]);
    x[0] * rows * cols * x[3]
}

impl PoolKernels for Cuda {
    fn max_pool2d_forward(x: &Tensor, s: &PoolSpec, ho: usize, wo: usize) -> Result<Tensor> {
        let op = "max_pool2d_forward";
        let (n, h, w, c) = x.dims4(op)?;
        let gpu = gpu_of(x, op)?;
        let y = empty(&gpu, &[n, ho, wo, c], x.dtype())?;
        if y.numel() > 0 {
            let [n, h, w, c] = nhwc(op, n, h, w, c)?;
            let [kk, st, ph, pw] = window(op, s)?;
            let (ho, wo) = (dim::<i32>(ho, op)?, dim::<i32>(wo, op)?);
            let cfg = Launch::flat(y.numel() / width(x.last_dim()));
            with_dtype!(x.dtype(), op, T => {
                let (xp, yp) = (DevPtr::<T>::of(x, op)?, DevPtrMut::of(&y, op)?);
                k::max_pool2d_forward(&gpu, cfg, xp, yp, n, h, w, c, kk, st, ph, pw, ho, wo)
            })?;
        }
        Ok(y)
    }

    /// dx from the forward's input x and output y (which tells each window's choice).
    fn max_pool2d_backward(x: &Tensor, y: &Tensor, dy: &Tensor, s: &PoolSpec) -> Result<Tensor> {
        let op = "max_pool2d_backward";
        let (n, h, w, c) = x.dims4(op)?;
        let (_, ho, wo, _) = dy.dims4(op)?;
        let gpu = gpu_of(x, op)?;
        let dx = empty(&gpu, x.shape(), x.dtype())?;
        if dx.numel() > 0 {
            let [n, h, w, c] = nhwc(op, n, h, w, c)?;
            let [kk, st, ph, pw] = window(op, s)?;
            let (ho, wo) = (dim::<i32>(ho, op)?, dim::<i32>(wo, op)?);
            let cfg = Launch::flat(dx.numel() / width(x.last_dim()));
            with_dtype!(x.dtype(), op, T => {
                let (xp, yp, dyp) = (DevPtr::<T>::of(x, op)?, DevPtr::of(y, op)?, DevPtr::of(dy, op)?);
                let dxp = DevPtrMut::of(&dx, op)?;
                k::max_pool2d_backward(&gpu, cfg, xp, yp, dyp, dxp, n, h, w, c, kk, st, ph, pw, ho, wo)
            })?;
            let e = x.dtype().size_in_bytes();
            let bytes = tf::max_pool_backward(dx.numel(), dy.numel(), e, s.kernel, s.stride);
            tf::record(Family::MaxPoolBackward, bytes);
        }
        Ok(dx)
    }

    fn avg_pool2d_forward(x: &Tensor, s: &AvgPoolSpec, ho: usize, wo: usize) -> Result<Tensor> {
        let op = "avg_pool2d_forward";
        let (n, h, w, c) = x.dims4(op)?;
        let gpu = gpu_of(x, op)?;
        let y = empty(&gpu, &[n, ho, wo, c], x.dtype())?;
        if y.numel() > 0 {
            let [n, h, w, c] = nhwc(op, n, h, w, c)?;
            let [kk, st, ph, pw] = window(op, &s.window)?;
            let (cp, ho, wo) = (
                i32::from(s.count_padding),
                dim::<i32>(ho, op)?,
                dim::<i32>(wo, op)?,
            );
            let cfg = Launch::flat(y.numel() / width(x.last_dim()));
            with_dtype!(x.dtype(), op, T => {
                let (xp, yp) = (DevPtr::<T>::of(x, op)?, DevPtrMut::of(&y, op)?);
                k::avg_pool2d_forward(&gpu, cfg, xp, yp, n, h, w, c, kk, st, ph, pw, cp, ho, wo)
            })?;
            let (e, cells) = (
                x.dtype().size_in_bytes(),
                window_cells(x.shape(), s, y.shape()),
            );
            tf::record(
                Family::AvgPool,
                tf::avg_pool2d(x.numel(), y.numel(), cells, e, false),
            );
        }
        Ok(y)
    }

    fn avg_pool2d_backward(dy: &Tensor, s: &AvgPoolSpec, x_shape: &[usize]) -> Result<Tensor> {
        let op = "avg_pool2d_backward";
        let (n, ho, wo, c) = dy.dims4(op)?;
        let (h, w) = (x_shape[1], x_shape[2]);
        let gpu = gpu_of(dy, op)?;
        let dx = empty(&gpu, x_shape, dy.dtype())?;
        if dx.numel() > 0 {
            let [n, h, w, c] = nhwc(op, n, h, w, c)?;
            let [kk, st, ph, pw] = window(op, &s.window)?;
            let (cp, ho, wo) = (
                i32::from(s.count_padding),
                dim::<i32>(ho, op)?,
                dim::<i32>(wo, op)?,
            );
            // Windows that tile the image: one thread per window (each dy read once), else
            // one per input cell gathering its covering windows.
            let tiles = kk == st;
            let threads = if tiles { dy.numel() } else { dx.numel() };
            let cfg = Launch::flat(threads / width(dy.last_dim()));
            with_dtype!(dy.dtype(), op, T => {
                let (dyp, dxp) = (DevPtr::<T>::of(dy, op)?, DevPtrMut::of(&dx, op)?);
                if tiles {
                    k::avg_pool2d_backward_tiles(&gpu, cfg, dyp, dxp, n, h, w, c, kk, ph, pw, cp, ho, wo)
                } else {
                    k::avg_pool2d_backward(&gpu, cfg, dyp, dxp, n, h, w, c, kk, st, ph, pw, cp, ho, wo)
                }
            })?;
            let e = dy.dtype().size_in_bytes();
            let bytes = if tiles {
                tf::avg_pool2d_tiles_backward(dx.numel(), dy.numel(), e)
            } else {
                let cells = window_cells(x_shape, s, dy.shape());
                tf::avg_pool2d(dx.numel(), dy.numel(), cells, e, true)
            };
            tf::record(Family::AvgPool, bytes);
        }
        Ok(dx)
    }

    fn global_avg_pool_forward(x: &Tensor) -> Result<Tensor> {
        let op = "global_avg_pool_forward";
        let (n, h, w, c) = x.dims4(op)?;
        let gpu = gpu_of(x, op)?;
        let y = empty(&gpu, &[n, c], x.dtype())?;
        if y.numel() > 0 {
            let (hw, c32) = (dim::<i32>(h * w, op)?, dim::<i32>(c, op)?);
            let (cfg, _) = geometry(op, n, h * w, c, 1)?;
            with_dtype!(x.dtype(), op, T => {
                let (xp, yp) = (DevPtr::<T>::of(x, op)?, DevPtrMut::of(&y, op)?);
                k::global_avg_pool_forward(&gpu, cfg, xp, yp, hw, c32)
            })?;
            let e = x.dtype().size_in_bytes();
            tf::record(Family::AvgPool, tf::one_pass(x.numel() + y.numel(), e));
        }
        Ok(y)
    }

    fn global_avg_pool_backward(dy: &Tensor, x_shape: &[usize]) -> Result<Tensor> {
        let op = "global_avg_pool_backward";
        let (n, h, w, c) = (x_shape[0], x_shape[1], x_shape[2], x_shape[3]);
        let gpu = gpu_of(dy, op)?;
        let dx = empty(&gpu, x_shape, dy.dtype())?;
        let total = dx.numel();
        if total > 0 {
            let (hw, c32) = (dim::<i32>(h * w, op)?, dim::<i32>(c, op)?);
            let (cfg, chunks) = geometry(op, n, h * w, c, 0)?;
            with_dtype!(dy.dtype(), op, T => {
                let (dyp, dxp) = (DevPtr::<T>::of(dy, op)?, DevPtrMut::of(&dx, op)?);
                k::global_avg_pool_backward(&gpu, cfg, dyp, dxp, hw, c32, chunks)
            })?;
            let e = dy.dtype().size_in_bytes();
            tf::record(Family::AvgPool, tf::one_pass(total + dy.numel(), e));
        }
        Ok(dx)
    }
}
