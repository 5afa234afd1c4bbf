//! CPU pooling kernels over NHWC, images in parallel. Windows start at `o·stride − before`
//! (the leading padding of that axis) and are clipped to the image.

use super::{AvgPoolSpec, PoolKernels, PoolSpec};
use crate::ops::backend::Cpu;
use crate::{float_dispatch, Float, Result, Tensor};
use rayon::prelude::*;

fn window(o: usize, stride: usize, pad: usize, k: usize, len: usize) -> (usize, usize) {
    let start = (o * stride) as isize - pad as isize;
    let lo = start.max(0) as usize;
    let hi = ((start + k as isize).min(len as isize)).max(0) as usize;
    (lo, hi)
}

/// Index (within the image) of each output's maximum; ties go to the first element.
fn argmax<T: Float>(xi: &[T], shape: [usize; 3], s: &PoolSpec, ho: usize, wo: usize) -> Vec<usize> {
    let [h, w, c] = shape;
    let mut idx = vec![0usize; ho * wo * c];
    for oh in 0..ho {
        let (h0, h1) = window(oh, s.stride, s.pad_h.0, s.kernel, h);
        for ow in 0..wo {
            let (w0, w1) = window(ow, s.stride, s.pad_w.0, s.kernel, w);
            for ch in 0..c {
                let mut best = (T::NEG_INFINITY, usize::MAX);
                for ih in h0..h1 {
                    for iw in w0..w1 {
                        let i = (ih * w + iw) * c + ch;
                        if best.1 == usize::MAX || xi[i] > best.0 {
                            best = (xi[i], i);
                        }
                    }
                }
                idx[(oh * wo + ow) * c + ch] = best.1;
            }
        }
    }
    idx
}

pub fn max_forward<T: Float>(x: &Tensor, s: &PoolSpec, ho: usize, wo: usize) -> Result<Tensor> {
    let (n, h, w, c) = x.dims4("max_pool2d")?;
    let xs = x.cpu_slice::<T>("max_pool2d")?;
    let mut y = vec![T::ZERO; n * ho * wo * c];
    y.par_chunks_mut((ho * wo * c).max(1))
        .enumerate()
        .for_each(|(i, yi)| {
            let xi = &xs[i * h * w * c..(i + 1) * h * w * c];
            for (o, &j) in yi.iter_mut().zip(&argmax(xi, [h, w, c], s, ho, wo)) {
                *o = xi[j];
            }
        });
    Tensor::from_vec(y, &[n, ho, wo, c])
}

pub fn max_backward<T: Float>(x: &Tensor, dy: &Tensor, s: &PoolSpec) -> Result<Tensor> {
    let (n, h, w, c) = x.dims4("max_pool2d_backward")?;
    let (_, ho, wo, _) = dy.dims4("max_pool2d_backward")?;
    let (xs, dys) = (
        x.cpu_slice::<T>("max_pool2d_backward")?,
        dy.cpu_slice::<T>("max_pool2d_backward")?,
    );
    let mut dx = vec![T::ZERO; xs.len()];
    dx.par_chunks_mut((h * w * c).max(1))
        .enumerate()
        .for_each(|(i, dxi)| {
            let xi = &xs[i * h * w * c..(i + 1) * h * w * c];
            let dyi = &dys[i * ho * wo * c..(i + 1) * ho * wo * c];
            for (&g, &j) in dyi.iter().zip(&argmax(xi, [h, w, c], s, ho, wo)) {
                dxi[j] += g;
            }
        });
    let _ = n;
    Tensor::from_vec(dx, x.shape())
}

/// Clipped windows of output (oh, ow) and the reciprocal of their divisor: k² when padding
/// counts, else the number of image cells inside.
fn avg_window(s: &AvgPoolSpec, hw: (usize, usize), oh: usize, ow: usize) -> [usize; 5] {
    let p = &s.window;
    let (h0, h1) = window(oh, p.stride, p.pad_h.0, p.kernel, hw.0);
    let (w0, w1) = window(ow, p.stride, p.pad_w.0, p.kernel, hw.1);
    let count = if s.count_padding {
        p.kernel * p.kernel
    } else {
        (h1 - h0) * (w1 - w0)
    };
    [h0, h1, w0, w1, count]
}

pub fn avg_forward<T: Float>(x: &Tensor, s: &AvgPoolSpec, ho: usize, wo: usize) -> Result<Tensor> {
    let (n, h, w, c) = x.dims4("avg_pool2d")?;
    let xs = x.cpu_slice::<T>("avg_pool2d")?;
    let mut y = vec![T::ZERO; n * ho * wo * c];
    y.par_chunks_mut((ho * wo * c).max(1))
        .enumerate()
        .for_each(|(i, yi)| {
            let xi = &xs[i * h * w * c..(i + 1) * h * w * c];
            for oh in 0..ho {
                for ow in 0..wo {
                    let [h0, h1, w0, w1, count] = avg_window(s, (h, w), oh, ow);
                    let inv = T::ONE / T::from_usize(count);
                    let out = &mut yi[(oh * wo + ow) * c..(oh * wo + ow + 1) * c];
                    for ih in h0..h1 {
                        for iw in w0..w1 {
                            let src = &xi[(ih * w + iw) * c..(ih * w + iw + 1) * c];
                            for (o, &v) in out.iter_mut().zip(src) {
                                *o += v * inv;
                            }
                        }
                    }
                }
            }
        });
    Tensor::from_vec(y, &[n, ho, wo, c])
}

pub fn avg_backward<T: Float>(dy: &Tensor, s: &AvgPoolSpec, x_shape: &[usize]) -> Result<Tensor> {
    let (_, ho, wo, c) = dy.dims4("avg_pool2d_backward")?;
    let (h, w) = (x_shape[1], x_shape[2]);
    let dys = dy.cpu_slice::<T>("avg_pool2d_backward")?;
    let mut dx = vec![T::ZERO; x_shape.iter().product()];
    dx.par_chunks_mut((h * w * c).max(1))
        .enumerate()
        .for_each(|(i, dxi)| {
            let dyi = &dys[i * ho * wo * c..(i + 1) * ho * wo * c];
            for oh in 0..ho {
                for ow in 0..wo {
                    let [h0, h1, w0, w1, count] = avg_window(s, (h, w), oh, ow);
                    let inv = T::ONE / T::from_usize(count);
                    let g = &dyi[(oh * wo + ow) * c..(oh * wo + ow + 1) * c];
                    for ih in h0..h1 {
                        for iw in w0..w1 {
                            for (d, &v) in dxi[(ih * w + iw) * c..(ih * w + iw + 1) * c]
                                .iter_mut()
                                .zip(g)
                            {
                                *d += v * inv;
                            }
                        }
                    }
                }
            }
        });
    Tensor::from_vec(dx, x_shape)
}

pub fn global_avg_forward<T: Float>(x: &Tensor) -> Result<Tensor> {
    let (n, h, w, c) = x.dims4("global_avg_pool")?;
    let xs = x.cpu_slice::<T>("global_avg_pool")?;
    let inv = T::ONE / T::from_usize(h * w);
    let mut y = vec![T::ZERO; n * c];
    y.par_chunks_mut(c.max(1)).enumerate().for_each(|(i, yi)| {
        for px in xs[i * h * w * c..(i + 1) * h * w * c].chunks(c) {
            for (o, &v) in yi.iter_mut().zip(px) {
                *o += v;
            }
        }
        for o in yi.iter_mut() {
            *o *= inv;
        }
    });
    Tensor::from_vec(y, &[n, c])
}

pub fn global_avg_backward<T: Float>(dy: &Tensor, x_shape: &[usize]) -> Result<Tensor> {
    let (h, w, c) = (x_shape[1], x_shape[2], x_shape[3]);
    let dys = dy.cpu_slice::<T>("global_avg_pool_backward")?;
    let inv = T::ONE / T::from_usize(h * w);
    let mut dx = vec![T::ZERO; x_shape.iter().product()];
    dx.par_chunks_mut((h * w * c).max(1))
        .enumerate()
        .for_each(|(i, dxi)| {
            let g = &dys[i * c..(i + 1) * c];
            for px in dxi.chunks_mut(c) {
                for (d, &v) in px.iter_mut().zip(g) {
                    *d = v * inv;
                }
            }
        });
    Tensor::from_vec(dx, x_shape)
}

impl PoolKernels for Cpu {
    fn max_pool2d_forward(x: &Tensor, s: &PoolSpec, ho: usize, wo: usize) -> Result<Tensor> {
        float_dispatch!("max_pool2d", x.dtype(), max_forward(x, s, ho, wo))
    }
    fn max_pool2d_backward(x: &Tensor, y: &Tensor, dy: &Tensor, s: &PoolSpec) -> Result<Tensor> {
        // The CPU re-derives each window's choice from x.
        let _ = y;
        float_dispatch!("max_pool2d_backward", x.dtype(), max_backward(x, dy, s))
    }
    fn avg_pool2d_forward(x: &Tensor, s: &AvgPoolSpec, ho: usize, wo: usize) -> Result<Tensor> {
        float_dispatch!("avg_pool2d", x.dtype(), avg_forward(x, s, ho, wo))
    }
    fn avg_pool2d_backward(dy: &Tensor, s: &AvgPoolSpec, x_shape: &[usize]) -> Result<Tensor> {
        float_dispatch!(
            "avg_pool2d_backward",
            dy.dtype(),
            avg_backward(dy, s, x_shape)
        )
    }
    fn global_avg_pool_forward(x: &Tensor) -> Result<Tensor> {
        float_dispatch!("global_avg_pool", x.dtype(), global_avg_forward(x))
    }
    fn global_avg_pool_backward(dy: &Tensor, x_shape: &[usize]) -> Result<Tensor> {
        float_dispatch!(
            "global_avg_pool_backward",
            dy.dtype(),
            global_avg_backward(dy, x_shape)
        )
    }
}
