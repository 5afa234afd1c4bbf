//! L2 normalisation of each row (last dimension): y = x / max(‖x‖, eps), as F.normalize does.

#[cfg(feature = "cuda")]
mod cuda;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
#[cfg(test)]
mod tests;

mod tape;
pub use tape::l2_normalize;

use crate::ops::backend::Cpu;
use crate::{float_dispatch, on_backend, Error, Float, Result, Tensor};
use rayon::prelude::*;

/// What each backend provides for the L2 normalisation (the CPU's and the GPU's implementations take the
/// same arguments: the compiler checks them against this trait).
pub(crate) trait NormalizeKernels {
    fn l2_normalize_forward(x: &Tensor) -> Result<Tensor>;
    fn l2_normalize_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor>;
}

pub const L2_EPS: f64 = 1e-12;

fn forward_cpu<T: Float>(x: &Tensor) -> Result<Tensor> {
    let xs = x.cpu_slice::<T>("l2_normalize")?;
    let c = x.last_dim();
    let mut y = vec![T::ZERO; xs.len()];
    let eps = T::from_f64(L2_EPS);
    y.par_chunks_mut(c)
        .zip(xs.par_chunks(c))
        .for_each(|(yr, xr)| {
            let n = xr.iter().map(|&v| v * v).sum::<T>().sqrt().max(eps);
            for (o, &v) in yr.iter_mut().zip(xr) {
                *o = v / n;
            }
        });
    Tensor::from_vec(y, x.shape())
}

/// dx = (dy − y·(dy·y)) / ‖x‖ where ‖x‖ > eps; dy / eps otherwise (y = x/eps is then linear).
fn backward_cpu<T: Float>(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let (xs, gs) = (
        x.cpu_slice::<T>("l2_normalize_backward")?,
        dy.cpu_slice::<T>("l2_normalize_backward")?,
    );
    let c = x.last_dim();
    let mut dx = vec![T::ZERO; xs.len()];
    let eps = T::from_f64(L2_EPS);
    dx.par_chunks_mut(c)
        .zip(xs.par_chunks(c).zip(gs.par_chunks(c)))
        .for_each(|(d, (xr, gr))| {
            let n = xr.iter().map(|&v| v * v).sum::<T>().sqrt();
            if n > eps {
                let dot: T = xr.iter().zip(gr).map(|(&a, &b)| a * b).sum::<T>() / n;
                for ((o, &a), &g) in d.iter_mut().zip(xr).zip(gr) {
                    *o = (g - a / n * dot) / n;
                }
            } else {
                for (o, &g) in d.iter_mut().zip(gr) {
                    *o = g / eps;
                }
            }
        });
    Tensor::from_vec(dx, x.shape())
}

pub fn l2_normalize_forward(x: &Tensor) -> Result<Tensor> {
    if x.rank() == 0 || x.last_dim() == 0 {
        return Err(Error::shape(
            "l2_normalize",
            format!("needs a non-empty last dimension, got {:?}", x.shape()),
        ));
    }
    on_backend!("l2_normalize", [x], B => B::l2_normalize_forward(x))
}

pub fn l2_normalize_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    on_backend!("l2_normalize_backward", [x, dy], B => B::l2_normalize_backward(x, dy))
}

impl NormalizeKernels for Cpu {
    fn l2_normalize_forward(x: &Tensor) -> Result<Tensor> {
        float_dispatch!("l2_normalize", x.dtype(), forward_cpu(x))
    }
    fn l2_normalize_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
        float_dispatch!("l2_normalize_backward", x.dtype(), backward_cpu(x, dy))
    }
}
