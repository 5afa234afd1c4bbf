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

use crate::{on_backend, Error, Result, Tensor};

/// What each backend provides for the matrix products (the CPU's and the GPU's implementations take the
/// same arguments: the compiler checks them against this trait).
pub(crate) trait MatmulKernels {
    /// Row-major C [m, n] = op(A)·op(B). cuBLAS is column-major, where a row-major matrix reads
    /// as its transpose, so it computes Cᵀ = op(B)ᵀ·op(A)ᵀ.
    #[allow(clippy::too_many_arguments)]
    fn matmul_forward(
        a: &Tensor,
        b: &Tensor,
        ta: bool,
        tb: bool,
        m: usize,
        k: usize,
        n: usize,
    ) -> Result<Tensor>;
    fn add_bias_forward(x: &Tensor, b: &Tensor) -> Result<Tensor>;
    /// Sum over all rows of x [.., C] → [C].
    fn sum_rows_forward(x: &Tensor) -> Result<Tensor>;
}

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
    on_backend!("matmul", [a, b], B => B::matmul_forward(a, b, ta, tb, m, k, n))
}

/// Adds `b` [C] to every row of `x` [.., C].
pub fn add_bias_forward(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    if b.shape() != [x.last_dim()] {
        return Err(Error::shape(
            "add_bias",
            format!("bias {:?} for rows of {}", b.shape(), x.last_dim()),
        ));
    }
    on_backend!("add_bias", [x, b], B => B::add_bias_forward(x, b))
}

/// Sum over all rows of `x` [.., C] → [C] (the bias gradient).
pub fn sum_rows_forward(x: &Tensor) -> Result<Tensor> {
    on_backend!("sum_rows", [x], B => B::sum_rows_forward(x))
}
