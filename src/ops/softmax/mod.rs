//! Softmax and log-softmax over the last dimension.

#[cfg(feature = "cuda")]
mod cuda;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
#[cfg(test)]
mod tests;

mod tape;
pub use tape::{log_softmax, softmax};

use crate::ops::backend::Cpu;
use crate::{float_dispatch, on_backend, Error, Float, Result, Tensor};
use rayon::prelude::*;

/// What each backend provides for softmax (the CPU's and the GPU's implementations take the
/// same arguments: the compiler checks them against this trait).
pub(crate) trait SoftmaxKernels {
    fn softmax_forward(x: &Tensor) -> Result<Tensor>;
    fn log_softmax_forward(x: &Tensor) -> Result<Tensor>;
    fn softmax_backward(y: &Tensor, dy: &Tensor) -> Result<Tensor>;
    fn log_softmax_backward(y: &Tensor, dy: &Tensor) -> Result<Tensor>;
}

fn rows<T: Float>(
    x: &Tensor,
    op: &'static str,
    f: impl Fn(&[T], &mut [T]) + Sync,
) -> Result<Tensor> {
    let xs = x.cpu_slice::<T>(op)?;
    let c = x.last_dim().max(1);
    let mut y = vec![T::ZERO; xs.len()];
    y.par_chunks_mut(c)
        .zip(xs.par_chunks(c))
        .for_each(|(yr, xr)| f(xr, yr));
    Tensor::from_vec(y, x.shape())
}

fn rows2<T: Float>(
    a: &Tensor,
    b: &Tensor,
    op: &'static str,
    f: impl Fn(&[T], &[T], &mut [T]) + Sync,
) -> Result<Tensor> {
    let (xs, ys) = (a.cpu_slice::<T>(op)?, b.cpu_slice::<T>(op)?);
    let c = a.last_dim().max(1);
    let mut out = vec![T::ZERO; xs.len()];
    out.par_chunks_mut(c)
        .zip(xs.par_chunks(c).zip(ys.par_chunks(c)))
        .for_each(|(o, (p, q))| f(p, q, o));
    Tensor::from_vec(out, a.shape())
}

/// log Σ exp(x) of one row, shifted by the maximum for stability.
pub fn logsumexp<T: Float>(x: &[T]) -> T {
    let m = x.iter().copied().fold(T::NEG_INFINITY, T::max);
    m + x.iter().map(|&v| (v - m).exp()).sum::<T>().ln()
}

fn softmax_cpu<T: Float>(x: &Tensor) -> Result<Tensor> {
    rows::<T>(x, "softmax", |xr, yr| {
        let l = logsumexp(xr);
        for (y, &v) in yr.iter_mut().zip(xr) {
            *y = (v - l).exp();
        }
    })
}
fn log_softmax_cpu<T: Float>(x: &Tensor) -> Result<Tensor> {
    rows::<T>(x, "log_softmax", |xr, yr| {
        let l = logsumexp(xr);
        for (y, &v) in yr.iter_mut().zip(xr) {
            *y = v - l;
        }
    })
}
/// dx = y·(dy − Σ dy·y).
fn softmax_backward_cpu<T: Float>(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    rows2::<T>(y, dy, "softmax_backward", |yr, gr, o| {
        let s: T = yr.iter().zip(gr).map(|(&a, &b)| a * b).sum();
        for ((o, &a), &g) in o.iter_mut().zip(yr).zip(gr) {
            *o = a * (g - s);
        }
    })
}
/// dx = dy − softmax·Σ dy, with softmax = exp(y).
fn log_softmax_backward_cpu<T: Float>(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    rows2::<T>(y, dy, "log_softmax_backward", |yr, gr, o| {
        let s: T = gr.iter().copied().sum();
        for ((o, &a), &g) in o.iter_mut().zip(yr).zip(gr) {
            *o = g - a.exp() * s;
        }
    })
}

fn nonempty(op: &'static str, x: &Tensor) -> Result<()> {
    if x.rank() == 0 || x.last_dim() == 0 {
        return Err(Error::shape(
            op,
            format!("needs a non-empty last dimension, got {:?}", x.shape()),
        ));
    }
    Ok(())
}

pub fn softmax_forward(x: &Tensor) -> Result<Tensor> {
    nonempty("softmax", x)?;
    on_backend!("softmax", [x], B => B::softmax_forward(x))
}
pub fn log_softmax_forward(x: &Tensor) -> Result<Tensor> {
    nonempty("log_softmax", x)?;
    on_backend!("log_softmax", [x], B => B::log_softmax_forward(x))
}
pub fn softmax_backward(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    on_backend!("softmax_backward", [y, dy], B => B::softmax_backward(y, dy))
}
pub fn log_softmax_backward(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    on_backend!("log_softmax_backward", [y, dy], B => B::log_softmax_backward(y, dy))
}

impl SoftmaxKernels for Cpu {
    fn softmax_forward(x: &Tensor) -> Result<Tensor> {
        float_dispatch!("softmax", x.dtype(), softmax_cpu(x))
    }
    fn log_softmax_forward(x: &Tensor) -> Result<Tensor> {
        float_dispatch!("log_softmax", x.dtype(), log_softmax_cpu(x))
    }
    fn softmax_backward(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
        float_dispatch!("softmax_backward", y.dtype(), softmax_backward_cpu(y, dy))
    }
    fn log_softmax_backward(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
        float_dispatch!(
            "log_softmax_backward",
            y.dtype(),
            log_softmax_backward_cpu(y, dy)
        )
    }
}
