//! Matrix products: `matmul` (A·B with optional transposes) and `linear` (x·Wᵀ + b, W [out, in]).

pub mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
pub mod gemm;
#[cfg(test)]
mod tests;

mod tape;
pub use tape::{linear, matmul};

use crate::{dispatch, float_dispatch, Error, Result, Tensor};

/// op(A)·op(B) where op transposes when asked; A and B are matrices.
pub fn matmul_forward(a: &Tensor, b: &Tensor, ta: bool, tb: bool) -> Result<Tensor> {
    let (ar, ac) = a.dims2("matmul")?;
    let (br, bc) = b.dims2("matmul")?;
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let (k2, n) = if tb { (bc, br) } else { (br, bc) };
    if k != k2 {
        return Err(Error::shape(
            "matmul",
            format!(
                "inner sizes differ: {:?}{} · {:?}{}",
                a.shape(),
                if ta { "ᵀ" } else { "" },
                b.shape(),
                if tb { "ᵀ" } else { "" }
            ),
        ));
    }
    dispatch!("matmul", [a, b], cpu: |dt| float_dispatch!("matmul", dt, cpu::matmul(a, b, ta, tb, m, k, n)),
        cuda: self::cuda::matmul(a, b, ta, tb, m, k, n))
}

/// Adds `b` [C] to every row of `x` [.., C].
pub fn add_bias_forward(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    if b.shape() != [x.last_dim()] {
        return Err(Error::shape(
            "add_bias",
            format!("bias {:?} for rows of {}", b.shape(), x.last_dim()),
        ));
    }
    dispatch!("add_bias", [x, b], cpu: |dt| float_dispatch!("add_bias", dt, cpu::add_bias(x, b)),
        cuda: self::cuda::add_bias(x, b))
}

/// Sum over all rows of `x` [.., C] → [C] (the bias gradient).
pub fn sum_rows_forward(x: &Tensor) -> Result<Tensor> {
    dispatch!("sum_rows", [x], cpu: |dt| float_dispatch!("sum_rows", dt, cpu::sum_rows(x)),
        cuda: self::cuda::sum_rows(x))
}
