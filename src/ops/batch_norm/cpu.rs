//! CPU batch norm over the last dimension (channels of NHWC, features of [N, C]).
//! Statistics are two-pass (mean, then centred squares) for accuracy.

use super::BatchNormKernels;
use crate::ops::backend::Cpu;
use crate::{float_dispatch, Float, Result, Tensor};
use rayon::prelude::*;

const ROWS_PER_TASK: usize = 256;

/// Adds per-task partial sums in task order: the result does not depend on how rayon scheduled
/// the tasks, so training is bit-for-bit reproducible (needed for exact resume).
fn sum_partials<T: Float>(partials: Vec<Vec<T>>, c: usize) -> Vec<T> {
    let mut acc = vec![T::ZERO; c];
    for p in partials {
        for (a, v) in acc.iter_mut().zip(p) {
            *a += v;
        }
    }
    acc
}

/// Per-channel sums of f(row values) over all rows, fixed blocks of rows across threads.
fn channel_sums<T: Float>(xs: &[T], c: usize, f: impl Fn(usize, T) -> T + Sync) -> Vec<T> {
    let partials: Vec<Vec<T>> = xs
        .par_chunks(c * ROWS_PER_TASK)
        .map(|chunk| {
            let mut acc = vec![T::ZERO; c];
            for row in chunk.chunks(c) {
                for (j, (&v, a)) in row.iter().zip(acc.iter_mut()).enumerate() {
                    *a += f(j, v);
                }
            }
            acc
        })
        .collect();
    sum_partials(partials, c)
}

fn channel_sums2<T: Float>(
    a: &[T],
    b: &[T],
    c: usize,
    f: impl Fn(usize, T, T) -> T + Sync,
) -> Vec<T> {
    let partials: Vec<Vec<T>> = a
        .par_chunks(c * ROWS_PER_TASK)
        .zip(b.par_chunks(c * ROWS_PER_TASK))
        .map(|(ca, cb)| {
            let mut acc = vec![T::ZERO; c];
            for (ra, rb) in ca.chunks(c).zip(cb.chunks(c)) {
                for j in 0..c {
                    acc[j] += f(j, ra[j], rb[j]);
                }
            }
            acc
        })
        .collect();
    sum_partials(partials, c)
}

/// y = (x − mean)·invstd·gamma + beta, rows in parallel.
fn apply<T: Float>(xs: &[T], c: usize, mean: &[T], scale: &[T], beta: Option<&[T]>) -> Vec<T> {
    let mut y = vec![T::ZERO; xs.len()];
    y.par_chunks_mut(c * ROWS_PER_TASK)
        .zip(xs.par_chunks(c * ROWS_PER_TASK))
        .for_each(|(yc, xc)| {
            for (yr, xr) in yc.chunks_mut(c).zip(xc.chunks(c)) {
                for j in 0..c {
                    let b = beta.map_or(T::ZERO, |b| b[j]);
                    yr[j] = (xr[j] - mean[j]) * scale[j] + b;
                }
            }
        });
    y
}

/// Returns (y, batch mean, batch invstd, unbiased batch variance).
pub fn train_forward<T: Float>(
    x: &Tensor,
    gamma: &Tensor,
    beta: Option<&Tensor>,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
    let op = "batch_norm";
    let xs = x.cpu_slice::<T>(op)?;
    let c = x.last_dim();
    let m = xs.len() / c;
    let gs = gamma.cpu_slice::<T>(op)?;
    let bs = beta.map(|b| b.cpu_slice::<T>(op)).transpose()?;
    let inv_m = T::ONE / T::from_usize(m);
    let mean: Vec<T> = channel_sums(xs, c, |_, v| v)
        .into_iter()
        .map(|s| s * inv_m)
        .collect();
    let var: Vec<T> = channel_sums(xs, c, |j, v| (v - mean[j]) * (v - mean[j]))
        .into_iter()
        .map(|s| s * inv_m)
        .collect();
    let eps = T::from_f64(eps);
    let invstd: Vec<T> = var.iter().map(|&v| T::ONE / (v + eps).sqrt()).collect();
    let scale: Vec<T> = invstd.iter().zip(gs).map(|(&i, &g)| i * g).collect();
    let y = apply(xs, c, &mean, &scale, bs);
    let unbias = T::from_usize(m) / T::from_usize(m.saturating_sub(1).max(1));
    let var_unbiased: Vec<T> = var.iter().map(|&v| v * unbias).collect();
    Ok((
        Tensor::from_vec(y, x.shape())?,
        Tensor::from_vec(mean, &[c])?,
        Tensor::from_vec(invstd, &[c])?,
        Tensor::from_vec(var_unbiased, &[c])?,
    ))
}

/// Normalises with given statistics (eval mode): returns (y, invstd).
pub fn eval_forward<T: Float>(
    x: &Tensor,
    gamma: &Tensor,
    beta: Option<&Tensor>,
    mean: &Tensor,
    var: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor)> {
    let op = "batch_norm";
    let xs = x.cpu_slice::<T>(op)?;
    let c = x.last_dim();
    let (gs, ms, vs) = (
        gamma.cpu_slice::<T>(op)?,
        mean.cpu_slice::<T>(op)?,
        var.cpu_slice::<T>(op)?,
    );
    let bs = beta.map(|b| b.cpu_slice::<T>(op)).transpose()?;
    let eps = T::from_f64(eps);
    let invstd: Vec<T> = vs.iter().map(|&v| T::ONE / (v + eps).sqrt()).collect();
    let scale: Vec<T> = invstd.iter().zip(gs).map(|(&i, &g)| i * g).collect();
    Ok((
        Tensor::from_vec(apply(xs, c, ms, &scale, bs), x.shape())?,
        Tensor::from_vec(invstd, &[c])?,
    ))
}

/// The per-channel sums of the backward: (Σ dy·x̂, Σ dy) with x̂ = (x − mean)·invstd, which
/// are also dgamma and dbeta.
pub fn grad_sums<T: Float>(
    x: &Tensor,
    dy: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let op = "batch_norm_backward";
    let (xs, dys) = (x.cpu_slice::<T>(op)?, dy.cpu_slice::<T>(op)?);
    let (ms, is) = (mean.cpu_slice::<T>(op)?, invstd.cpu_slice::<T>(op)?);
    let c = x.last_dim();
    let dbeta = channel_sums(dys, c, |_, g| g);
    let dgamma = channel_sums2(xs, dys, c, |j, v, g| g * (v - ms[j]) * is[j]);
    Ok((
        Tensor::from_vec(dgamma, &[c])?,
        Tensor::from_vec(dbeta, &[c])?,
    ))
}

/// dx given the sums of [`grad_sums`] over the `count` rows the statistics came from
/// (`None`: the statistics are constants, eval mode).
#[allow(clippy::too_many_arguments)]
pub fn backward_from_sums<T: Float>(
    x: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    dgamma: &Tensor,
    dbeta: &Tensor,
    count: Option<usize>,
) -> Result<Tensor> {
    let op = "batch_norm_backward";
    let (xs, dys) = (x.cpu_slice::<T>(op)?, dy.cpu_slice::<T>(op)?);
    let (gs, ms, is) = (
        gamma.cpu_slice::<T>(op)?,
        mean.cpu_slice::<T>(op)?,
        invstd.cpu_slice::<T>(op)?,
    );
    let (dgamma, dbeta) = (dgamma.cpu_slice::<T>(op)?, dbeta.cpu_slice::<T>(op)?);
    let c = x.last_dim();
    let inv_m = T::ONE / T::from_usize(count.unwrap_or(1));
    let batch_stats = count.is_some();
    let mut dx = vec![T::ZERO; xs.len()];
    dx.par_chunks_mut(c * ROWS_PER_TASK)
        .zip(
            xs.par_chunks(c * ROWS_PER_TASK)
                .zip(dys.par_chunks(c * ROWS_PER_TASK)),
        )
        .for_each(|(dc, (xc, gc))| {
            for ((dr, xr), gr) in dc.chunks_mut(c).zip(xc.chunks(c)).zip(gc.chunks(c)) {
                for j in 0..c {
                    let k = gs[j] * is[j];
                    dr[j] = if batch_stats {
                        let xhat = (xr[j] - ms[j]) * is[j];
                        k * (gr[j] - dbeta[j] * inv_m - xhat * dgamma[j] * inv_m)
                    } else {
                        k * gr[j]
                    };
                }
            }
        });
    Tensor::from_vec(dx, x.shape())
}

impl BatchNormKernels for Cpu {
    fn train_forward(
        x: &Tensor,
        gamma: &Tensor,
        beta: Option<&Tensor>,
        eps: f64,
    ) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
        float_dispatch!("batch_norm", x.dtype(), train_forward(x, gamma, beta, eps))
    }

    fn eval_forward(
        x: &Tensor,
        gamma: &Tensor,
        beta: Option<&Tensor>,
        mean: &Tensor,
        var: &Tensor,
        eps: f64,
    ) -> Result<(Tensor, Tensor)> {
        let dt = x.dtype();
        float_dispatch!(
            "batch_norm",
            dt,
            eval_forward(x, gamma, beta, mean, var, eps)
        )
    }

    fn grad_sums(
        x: &Tensor,
        dy: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        float_dispatch!(
            "batch_norm_backward",
            x.dtype(),
            grad_sums(x, dy, mean, invstd)
        )
    }

    fn backward_from_sums(
        x: &Tensor,
        dy: &Tensor,
        gamma: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
        (dgamma, dbeta): (&Tensor, &Tensor),
        count: Option<usize>,
    ) -> Result<Tensor> {
        float_dispatch!(
            "batch_norm_backward",
            x.dtype(),
            backward_from_sums(x, dy, gamma, mean, invstd, dgamma, dbeta, count)
        )
    }
}
