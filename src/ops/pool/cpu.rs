//! CPU pooling kernels over NHWC, images in parallel.

use super::PoolSpec;
use crate::{Float, Result, Tensor};
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
        let (h0, h1) = window(oh, s.stride, s.padding, s.kernel, h);
        for ow in 0..wo {
            let (w0, w1) = window(ow, s.stride, s.padding, s.kernel, w);
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

/// 2x2 average pool with stride s over windows clipped to the image; the divisor counts only
/// the elements inside the image.
pub fn avg2x2_forward<T: Float>(x: &Tensor, stride: usize, ho: usize, wo: usize) -> Result<Tensor> {
    let (n, h, w, c) = x.dims4("avg_pool2x2")?;
    let xs = x.cpu_slice::<T>("avg_pool2x2")?;
    let mut y = vec![T::ZERO; n * ho * wo * c];
    y.par_chunks_mut((ho * wo * c).max(1))
        .enumerate()
        .for_each(|(i, yi)| {
            let xi = &xs[i * h * w * c..(i + 1) * h * w * c];
            for oh in 0..ho {
                let (h0, h1) = window(oh, stride, 0, 2, h);
                for ow in 0..wo {
                    let (w0, w1) = window(ow, stride, 0, 2, w);
                    let inv = T::ONE / T::from_usize((h1 - h0) * (w1 - w0));
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

pub fn avg2x2_backward<T: Float>(dy: &Tensor, stride: usize, x_shape: &[usize]) -> Result<Tensor> {
    let (_, ho, wo, c) = dy.dims4("avg_pool2x2_backward")?;
    let (h, w) = (x_shape[1], x_shape[2]);
    let dys = dy.cpu_slice::<T>("avg_pool2x2_backward")?;
    let mut dx = vec![T::ZERO; x_shape.iter().product()];
    dx.par_chunks_mut((h * w * c).max(1))
        .enumerate()
        .for_each(|(i, dxi)| {
            let dyi = &dys[i * ho * wo * c..(i + 1) * ho * wo * c];
            for oh in 0..ho {
                let (h0, h1) = window(oh, stride, 0, 2, h);
                for ow in 0..wo {
                    let (w0, w1) = window(ow, stride, 0, 2, w);
                    let inv = T::ONE / T::from_usize((h1 - h0) * (w1 - w0));
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
