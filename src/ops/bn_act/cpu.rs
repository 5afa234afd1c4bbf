//! CPU reference of the fused batch norm + (add +) ReLU: statistics, one apply pass, one
//! backward pass. Everything in T except the per-channel sums, which accumulate in f64 (rows
//! walked in order, deterministic): a sequential f32 sum over every row of a layer (32768 at
//! the stem of a 32-px batch of 16 pairs) lost enough digits to set one process apart from any
//! data-parallel split of the same batch (1.28e-2 of the training change after 6 pretraining
//! steps, against 4.3e-3 between 2 and 3 ranks; with f64 sums all three pairs differ by
//! 1.1-1.8e-3).
//!
//! The loops walk whole rows against the per-channel vectors (no index arithmetic, no bounds
//! checks inside a row), so the compiler vectorises them across channels; each channel's sum
//! still adds its rows in order, so the results are those of the plain element loop, bit for
//! bit. The elementwise passes share rows out over the threads (each element is computed the
//! same way wherever it runs).

use super::{BnActKernels, BnActSaved, OP};
use crate::ops::backend::Cpu;
use crate::{float_dispatch, Float, Result, Tensor};
use rayon::prelude::*;
use std::ops::Range;

/// Below about 64k elements a second thread costs more than it saves.
const MIN_PARALLEL_ELEMENTS: usize = 1 << 16;

/// Rows per parallel task of the elementwise passes.
fn rows_per_task(m: usize, c: usize) -> usize {
    let min_rows = MIN_PARALLEL_ELEMENTS.div_ceil(c.max(1));
    m.div_ceil(rayon::current_num_threads().max(1))
        .max(min_rows)
        .max(1)
}

/// Per-channel f64 sums over the rows of an [M, C] view, `width` accumulators per channel
/// (laid out [width][C]). The channels are shared out in contiguous ranges of at least 8, one
/// per thread; each range walks every row in order, so every channel adds its rows in the same
/// order whatever the split. `add(acc, row offset, channels)` adds one row's `channels` into
/// `acc`, laid out [width][channels.len()].
fn channel_sums(
    m: usize,
    c: usize,
    width: usize,
    add: impl Fn(&mut [f64], usize, Range<usize>) + Sync,
) -> Vec<f64> {
    let threads = rayon::current_num_threads().max(1);
    let parts = if m * c < MIN_PARALLEL_ELEMENTS {
        1
    } else {
        threads.min(c / 8).max(1)
    };
    let ranges: Vec<Range<usize>> = (0..parts)
        .map(|p| p * c / parts..(p + 1) * c / parts)
        .collect();
    let partial: Vec<Vec<f64>> = ranges
        .par_iter()
        .map(|ch| {
            let mut acc = vec![0.0f64; width * ch.len()];
            for r in 0..m {
                add(&mut acc, r * c, ch.clone());
            }
            acc
        })
        .collect();
    let mut out = vec![0.0f64; width * c];
    for (ch, acc) in ranges.iter().zip(&partial) {
        for w in 0..width {
            out[w * c + ch.start..w * c + ch.end]
                .copy_from_slice(&acc[w * ch.len()..(w + 1) * ch.len()]);
        }
    }
    out
}

/// Returns (mean, invstd, unbiased variance) of the channels (two-pass).
pub fn stats<T: Float>(x: &Tensor, eps: f64) -> Result<(Tensor, Tensor, Tensor)> {
    let xs = x.cpu_slice::<T>("bn_act")?;
    let c = x.last_dim();
    let m = xs.len() / c;
    let inv_m = T::ONE / T::from_usize(m);
    let mean: Vec<T> = channel_sums(m, c, 1, |acc, o, ch| {
        for (a, &v) in acc.iter_mut().zip(&xs[o + ch.start..o + ch.end]) {
            *a += v.to_f64();
        }
    })
    .into_iter()
    .map(|s| T::from_f64(s) * inv_m)
    .collect();
    let var: Vec<T> = channel_sums(m, c, 1, |acc, o, ch| {
        let row = xs[o + ch.start..o + ch.end].iter().zip(&mean[ch]);
        for (a, (&v, &mu)) in acc.iter_mut().zip(row) {
            *a += ((v - mu) * (v - mu)).to_f64();
        }
    })
    .into_iter()
    .map(|s| T::from_f64(s) * inv_m)
    .collect();
    let eps = T::from_f64(eps);
    let invstd: Vec<T> = var.iter().map(|&v| T::ONE / (v + eps).sqrt()).collect();
    let unbias = T::from_usize(m) / T::from_usize(m.saturating_sub(1).max(1));
    let var_u: Vec<T> = var.iter().map(|&v| v * unbias).collect();
    Ok((
        Tensor::from_vec(mean, &[c])?,
        Tensor::from_vec(invstd, &[c])?,
        Tensor::from_vec(var_u, &[c])?,
    ))
}

/// 1/sqrt(var + eps) per channel.
pub fn invstd<T: Float>(var: &Tensor, eps: f64) -> Result<Tensor> {
    let eps = T::from_f64(eps);
    let v: Vec<T> = var
        .cpu_slice::<T>("bn_act")?
        .iter()
        .map(|&v| T::ONE / (v + eps).sqrt())
        .collect();
    Tensor::from_vec(v, var.shape())
}

/// y = max(0, (x − mean)·invstd·gamma + beta [+ residual]).
pub fn forward<T: Float>(
    x: &Tensor,
    residual: Option<&Tensor>,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<Tensor> {
    let op = "batch_norm_relu_forward";
    let xs = x.cpu_slice::<T>(op)?;
    let rs = residual.map(|r| r.cpu_slice::<T>(op)).transpose()?;
    let (gs, bs) = (gamma.cpu_slice::<T>(op)?, beta.cpu_slice::<T>(op)?);
    let (ms, is) = (mean.cpu_slice::<T>(op)?, invstd.cpu_slice::<T>(op)?);
    let c = x.last_dim().max(1);
    let scale: Vec<T> = is.iter().zip(gs).map(|(&i, &g)| i * g).collect();
    let mut y = vec![T::ZERO; xs.len()];
    let task = rows_per_task(xs.len() / c, c) * c;
    y.par_chunks_mut(task).enumerate().for_each(|(t, yt)| {
        let base = t * task;
        for (r, yr) in yt.chunks_exact_mut(c).enumerate() {
            let o = base + r * c;
            let xr = &xs[o..o + c];
            let params = ms.iter().zip(&scale).zip(bs);
            match rs {
                Some(res) => {
                    let rr = &res[o..o + c];
                    for (((y, &v), ((&mu, &k), &b)), &add) in
                        yr.iter_mut().zip(xr).zip(params).zip(rr)
                    {
                        *y = ((v - mu) * k + b + add).max(T::ZERO);
                    }
                }
                None => {
                    for ((y, &v), ((&mu, &k), &b)) in yr.iter_mut().zip(xr).zip(params) {
                        *y = ((v - mu) * k + b + T::ZERO).max(T::ZERO);
                    }
                }
            }
        }
    });
    Tensor::from_vec(y, x.shape())
}

/// dy masked by the ReLU (y > 0).
fn masked<T: Float>(ys: &[T], dys: &[T]) -> Vec<T> {
    ys.iter()
        .zip(dys)
        .map(|(&y, &g)| if y > T::ZERO { g } else { T::ZERO })
        .collect()
}

/// The per-channel sums of the backward over the masked dy': (Σ dy'·x̂, Σ dy'), which are also
/// dgamma and dbeta.
pub fn grad_sums<T: Float>(
    x: &Tensor,
    y: &Tensor,
    dy: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let op = "batch_norm_relu_backward";
    let (xs, ys, dys) = (
        x.cpu_slice::<T>(op)?,
        y.cpu_slice::<T>(op)?,
        dy.cpu_slice::<T>(op)?,
    );
    let (ms, is) = (mean.cpu_slice::<T>(op)?, invstd.cpu_slice::<T>(op)?);
    let c = x.last_dim().max(1);
    let m = xs.len() / c;
    // One pass, two accumulators per channel: Σ dy' (dbeta) and Σ dy'·x̂ (dgamma).
    let acc = channel_sums(m, c, 2, |acc, o, ch| {
        let (db, dg) = acc.split_at_mut(ch.len());
        let (x, y, d) = (
            &xs[o + ch.start..],
            &ys[o + ch.start..],
            &dys[o + ch.start..],
        );
        let row = x.iter().zip(y).zip(d);
        let params = ms[ch.clone()].iter().zip(&is[ch]);
        for (((b, g), ((&v, &y), &d)), (&mu, &i)) in db.iter_mut().zip(dg).zip(row).zip(params) {
            let d = if y > T::ZERO { d } else { T::ZERO };
            *b += d.to_f64();
            *g += (d * (v - mu) * i).to_f64();
        }
    });
    let (dbeta, dgamma): (Vec<T>, Vec<T>) = (
        acc[..c].iter().map(|&v| T::from_f64(v)).collect(),
        acc[c..].iter().map(|&v| T::from_f64(v)).collect(),
    );
    Ok((
        Tensor::from_vec(dgamma, &[c])?,
        Tensor::from_vec(dbeta, &[c])?,
    ))
}

/// dx (and the residual's gradient when `residual`) given the sums (dgamma, dbeta) of
/// [`grad_sums`] over the `count` rows the statistics came from (`None`: eval mode).
#[allow(clippy::too_many_arguments)]
pub fn backward_from_sums<T: Float>(
    x: &Tensor,
    y: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    sums: (&Tensor, &Tensor),
    count: Option<usize>,
    residual: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let op = "batch_norm_relu_backward";
    let (xs, ys, dys) = (
        x.cpu_slice::<T>(op)?,
        y.cpu_slice::<T>(op)?,
        dy.cpu_slice::<T>(op)?,
    );
    let (gs, ms, is) = (
        gamma.cpu_slice::<T>(op)?,
        mean.cpu_slice::<T>(op)?,
        invstd.cpu_slice::<T>(op)?,
    );
    let (dgamma, dbeta) = (sums.0.cpu_slice::<T>(op)?, sums.1.cpu_slice::<T>(op)?);
    let c = x.last_dim().max(1);
    let masked = masked(ys, dys);
    let inv_m = T::ONE / T::from_usize(count.unwrap_or(1));
    let k: Vec<T> = gs.iter().zip(is).map(|(&g, &i)| g * i).collect();
    let mut dx = vec![T::ZERO; xs.len()];
    let task = rows_per_task(xs.len() / c, c) * c;
    dx.par_chunks_mut(task).enumerate().for_each(|(t, dt)| {
        let base = t * task;
        for (r, dr) in dt.chunks_exact_mut(c).enumerate() {
            let o = base + r * c;
            let row = masked[o..o + c].iter().zip(&xs[o..o + c]);
            let ch = k.iter().zip(ms).zip(is).zip(dbeta).zip(dgamma);
            for ((d, (&g, &v)), ((((&k, &mu), &i), &db), &dg)) in dr.iter_mut().zip(row).zip(ch) {
                *d = if count.is_some() {
                    let xhat = (v - mu) * i;
                    k * (g - db * inv_m - xhat * dg * inv_m)
                } else {
                    k * g
                };
            }
        }
    });
    let dres = if residual {
        Some(Tensor::from_vec(masked, x.shape())?)
    } else {
        None
    };
    Ok((Tensor::from_vec(dx, x.shape())?, dres))
}

impl BnActKernels for Cpu {
    fn stats(x: &Tensor, eps: f64) -> Result<(Tensor, Tensor, Tensor)> {
        float_dispatch!(OP, x.dtype(), stats(x, eps))
    }

    fn invstd(var: &Tensor, eps: f64) -> Result<Tensor> {
        float_dispatch!(OP, var.dtype(), invstd(var, eps))
    }

    fn forward(
        x: &Tensor,
        residual: Option<&Tensor>,
        gamma: &Tensor,
        beta: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
    ) -> Result<Tensor> {
        float_dispatch!(
            OP,
            x.dtype(),
            forward(x, residual, gamma, beta, mean, invstd)
        )
    }

    /// The CPU takes the mask from y, with or without a residual.
    fn grad_sums(s: &BnActSaved, dy: &Tensor, _residual: bool) -> Result<(Tensor, Tensor)> {
        float_dispatch!(OP, dy.dtype(), grad_sums(s.x, s.y, dy, s.mean, s.invstd))
    }

    fn backward_from_sums(
        s: &BnActSaved,
        dy: &Tensor,
        sums: (&Tensor, &Tensor),
        count: Option<usize>,
        residual: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (x, y, g, m, i) = (s.x, s.y, s.gamma, s.mean, s.invstd);
        float_dispatch!(
            OP,
            dy.dtype(),
            backward_from_sums(x, y, dy, g, m, i, sums, count, residual)
        )
    }
}
