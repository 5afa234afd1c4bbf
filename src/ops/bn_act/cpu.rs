//! CPU reference of the fused batch norm + (add +) ReLU: statistics, one apply pass, one
//! backward pass. Everything in T except the per-channel sums, which accumulate in f64 (rows
//! walked in order, deterministic): a sequential f32 sum over every row of a layer (32768 at
//! the stem of a 32-px batch of 16 pairs) lost enough digits to set one process apart from any
//! data-parallel split of the same batch (1.28e-2 of the training change after 6 pretraining
//! steps, against 4.3e-3 between 2 and 3 ranks; with f64 sums all three pairs differ by
//! 1.1-1.8e-3).

use crate::{Float, Result, Tensor};

/// Per-channel sums of f(channel, element index) over the rows of an [M, C] view, accumulated
/// in f64.
fn channel_sums<T: Float>(m: usize, c: usize, f: impl Fn(usize, usize) -> T) -> Vec<T> {
    let mut acc = vec![0.0f64; c];
    for r in 0..m {
        for (j, a) in acc.iter_mut().enumerate() {
            *a += f(j, r * c + j).to_f64();
        }
    }
    acc.into_iter().map(T::from_f64).collect()
}

/// Returns (mean, invstd, unbiased variance) of the channels (two-pass).
pub fn stats<T: Float>(x: &Tensor, eps: f64) -> Result<(Tensor, Tensor, Tensor)> {
    let xs = x.cpu_slice::<T>("bn_act")?;
    let c = x.last_dim();
    let m = xs.len() / c;
    let inv_m = T::ONE / T::from_usize(m);
    let mean: Vec<T> = channel_sums(m, c, |_, i| xs[i])
        .into_iter()
        .map(|s| s * inv_m)
        .collect();
    let var: Vec<T> = channel_sums(m, c, |j, i| (xs[i] - mean[j]) * (xs[i] - mean[j]))
        .into_iter()
        .map(|s| s * inv_m)
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
    let c = x.last_dim();
    let y: Vec<T> = xs
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let j = i % c;
            let pre = (v - ms[j]) * (is[j] * gs[j]) + bs[j] + rs.map_or(T::ZERO, |r| r[i]);
            pre.max(T::ZERO)
        })
        .collect();
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
    let c = x.last_dim();
    let m = xs.len() / c;
    let masked = masked(ys, dys);
    let dbeta = channel_sums(m, c, |_, i| masked[i]);
    let dgamma = channel_sums(m, c, |j, i| masked[i] * (xs[i] - ms[j]) * is[j]);
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
    let c = x.last_dim();
    let masked = masked(ys, dys);
    let inv_m = T::ONE / T::from_usize(count.unwrap_or(1));
    let dx: Vec<T> = masked
        .iter()
        .enumerate()
        .map(|(i, &g)| {
            let j = i % c;
            let k = gs[j] * is[j];
            if count.is_some() {
                let xhat = (xs[i] - ms[j]) * is[j];
                k * (g - dbeta[j] * inv_m - xhat * dgamma[j] * inv_m)
            } else {
                k * g
            }
        })
        .collect();
    let dres = if residual {
        Some(Tensor::from_vec(masked, x.shape())?)
    } else {
        None
    };
    Ok((Tensor::from_vec(dx, x.shape())?, dres))
}
