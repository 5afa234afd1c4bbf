//! CPU matrix products through the GEMM crate.

use super::gemm::{gemm, Layout};
use super::MatmulKernels;
use crate::ops::backend::Cpu;
use crate::{float_dispatch, Float, Result, Tensor};

pub fn matmul<T: Float>(
    a: &Tensor,
    b: &Tensor,
    ta: bool,
    tb: bool,
    m: usize,
    k: usize,
    n: usize,
) -> Result<Tensor> {
    let (xs, ys) = (a.cpu_slice::<T>("matmul")?, b.cpu_slice::<T>("matmul")?);
    let la = if ta {
        Layout::row_major(k, m).t()
    } else {
        Layout::row_major(m, k)
    };
    let lb = if tb {
        Layout::row_major(n, k).t()
    } else {
        Layout::row_major(k, n)
    };
    let mut out = vec![T::ZERO; m * n];
    gemm(
        T::ONE,
        xs,
        la,
        ys,
        lb,
        T::ZERO,
        &mut out,
        Layout::row_major(m, n),
    );
    Tensor::from_vec(out, &[m, n])
}

pub fn add_bias<T: Float>(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (xs, bs) = (x.cpu_slice::<T>("add_bias")?, b.cpu_slice::<T>("add_bias")?);
    let c = bs.len();
    let out: Vec<T> = xs.iter().enumerate().map(|(i, &v)| v + bs[i % c]).collect();
    Tensor::from_vec(out, x.shape())
}

pub fn sum_rows<T: Float>(x: &Tensor) -> Result<Tensor> {
    let xs = x.cpu_slice::<T>("sum_rows")?;
    let c = x.last_dim();
    let mut acc = vec![T::ZERO; c];
    for row in xs.chunks(c) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += v;
        }
    }
    Tensor::from_vec(acc, &[c])
}

impl MatmulKernels for Cpu {
    fn matmul_forward(
        a: &Tensor,
        b: &Tensor,
        ta: bool,
        tb: bool,
        m: usize,
        k: usize,
        n: usize,
    ) -> Result<Tensor> {
        float_dispatch!("matmul", a.dtype(), matmul(a, b, ta, tb, m, k, n))
    }
    fn add_bias_forward(x: &Tensor, b: &Tensor) -> Result<Tensor> {
        float_dispatch!("add_bias", x.dtype(), add_bias(x, b))
    }
    fn sum_rows_forward(x: &Tensor) -> Result<Tensor> {
        float_dispatch!("sum_rows", x.dtype(), sum_rows(x))
    }
}
