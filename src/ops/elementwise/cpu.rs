//! CPU kernels for same-shape elementwise ops. Large arrays are split across threads.

use super::ElementwiseKernels;
use crate::ops::backend::Cpu;
use crate::{float_dispatch, Float, Result, Tensor};
use rayon::prelude::*;

/// Below this many elements threading costs more than it saves.
const PAR_MIN: usize = 1 << 15;

pub fn map1<T: Float>(op: &'static str, x: &Tensor, f: impl Fn(T) -> T + Sync) -> Result<Tensor> {
    let xs = x.cpu_slice::<T>(op)?;
    let out: Vec<T> = if xs.len() >= PAR_MIN {
        xs.par_iter().map(|&a| f(a)).collect()
    } else {
        xs.iter().map(|&a| f(a)).collect()
    };
    Tensor::from_vec(out, x.shape())
}

pub fn map2<T: Float>(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    f: impl Fn(T, T) -> T + Sync,
) -> Result<Tensor> {
    let (xs, ys) = (a.cpu_slice::<T>(op)?, b.cpu_slice::<T>(op)?);
    let out: Vec<T> = if xs.len() >= PAR_MIN {
        xs.par_iter()
            .zip(ys.par_iter())
            .map(|(&p, &q)| f(p, q))
            .collect()
    } else {
        xs.iter().zip(ys).map(|(&p, &q)| f(p, q)).collect()
    };
    Tensor::from_vec(out, a.shape())
}

pub fn add_forward<T: Float>(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    map2::<T>("add", a, b, |p, q| p + q)
}
pub fn sub_forward<T: Float>(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    map2::<T>("sub", a, b, |p, q| p - q)
}
pub fn mul_forward<T: Float>(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    map2::<T>("mul", a, b, |p, q| p * q)
}
pub fn scale_forward<T: Float>(a: &Tensor, s: f64) -> Result<Tensor> {
    let s = T::from_f64(s);
    map1::<T>("scale", a, |p| p * s)
}
pub fn relu_forward<T: Float>(x: &Tensor) -> Result<Tensor> {
    map1::<T>("relu", x, |p| if p > T::ZERO { p } else { T::ZERO })
}
/// dx = dy where x > 0 (the subgradient at 0 is taken as 0, as PyTorch does).
pub fn relu_backward<T: Float>(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    map2::<T>("relu_backward", x, dy, |p, g| {
        if p > T::ZERO {
            g
        } else {
            T::ZERO
        }
    })
}
pub fn exp_forward<T: Float>(x: &Tensor) -> Result<Tensor> {
    map1::<T>("exp", x, |p| p.exp())
}
pub fn ln_forward<T: Float>(x: &Tensor) -> Result<Tensor> {
    map1::<T>("ln", x, |p| p.ln())
}
/// Sum of `v` by halves, a tree fixed by the length alone.
fn pairwise<T: Float>(v: &[T]) -> T {
    match v.len() {
        0 => T::ZERO,
        1 => v[0],
        n => pairwise(&v[..n / 2]) + pairwise(&v[n / 2..]),
    }
}

/// 1/x as a direct map (exp(−ln x) would lose accuracy).
pub fn recip_forward<T: Float>(x: &Tensor) -> Result<Tensor> {
    map1::<T>("recip", x, |p| T::ONE / p)
}

pub fn sum_all<T: Float>(x: &Tensor) -> Result<Tensor> {
    let xs = x.cpu_slice::<T>("sum")?;
    // Fixed 4096-element partials, collected in order and added pairwise: the same tree on any
    // thread count or schedule (rayon's own `sum` splits where work is stolen, so its bits
    // varied run to run), with rounding error near O(log n · eps).
    let s: T = if xs.len() >= PAR_MIN {
        let partials: Vec<T> = xs
            .par_chunks(4096)
            .map(|c| c.iter().copied().sum::<T>())
            .collect();
        pairwise(&partials)
    } else {
        xs.iter().copied().sum()
    };
    Tensor::from_vec(vec![s], &[])
}

impl ElementwiseKernels for Cpu {
    fn add_forward(a: &Tensor, b: &Tensor) -> Result<Tensor> {
        float_dispatch!("add", a.dtype(), add_forward(a, b))
    }
    fn sub_forward(a: &Tensor, b: &Tensor) -> Result<Tensor> {
        float_dispatch!("sub", a.dtype(), sub_forward(a, b))
    }
    fn mul_forward(a: &Tensor, b: &Tensor) -> Result<Tensor> {
        float_dispatch!("mul", a.dtype(), mul_forward(a, b))
    }
    fn scale_forward(x: &Tensor, s: f64) -> Result<Tensor> {
        float_dispatch!("scale", x.dtype(), scale_forward(x, s))
    }
    fn relu_forward(x: &Tensor) -> Result<Tensor> {
        float_dispatch!("relu", x.dtype(), relu_forward(x))
    }
    fn relu_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
        float_dispatch!("relu_backward", x.dtype(), relu_backward(x, dy))
    }
    fn exp_forward(x: &Tensor) -> Result<Tensor> {
        float_dispatch!("exp", x.dtype(), exp_forward(x))
    }
    fn ln_forward(x: &Tensor) -> Result<Tensor> {
        float_dispatch!("ln", x.dtype(), ln_forward(x))
    }
    fn recip_forward(x: &Tensor) -> Result<Tensor> {
        float_dispatch!("recip", x.dtype(), recip_forward(x))
    }
    fn sum_all(x: &Tensor) -> Result<Tensor> {
        float_dispatch!("sum", x.dtype(), sum_all(x))
    }
}
