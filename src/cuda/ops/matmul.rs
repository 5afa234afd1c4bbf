//! The bias half of linear layers (kernels/matmul.cu); products are in `cuda::blas`.

use super::{i32a, i64a};
use crate::cuda::module::Launch;
use crate::cuda::storage::{empty, gpu_of, ptr};
use crate::{Result, Tensor};

pub fn add_bias(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    let op = "add_bias";
    let gpu = gpu_of(x, op)?;
    let y = empty(&gpu, x.shape(), x.dtype())?;
    let n = x.numel();
    if n > 0 {
        let args = [
            ptr(x, op)?,
            ptr(b, op)?,
            ptr(&y, op)?,
            i64a(n),
            i32a(x.last_dim()),
        ];
        gpu.launch_typed(op, x.dtype(), Launch::flat(n), &args)?;
    }
    Ok(y)
}

/// Sum over all rows of x [.., C] → [C].
pub fn sum_rows(x: &Tensor) -> Result<Tensor> {
    let op = "sum_rows";
    let gpu = gpu_of(x, op)?;
    let c = x.last_dim();
    let y = empty(&gpu, &[c], x.dtype())?;
    if let Some(rows) = x.numel().checked_div(c) {
        let args = [ptr(x, op)?, ptr(&y, op)?, i64a(rows), i32a(c)];
        gpu.launch_typed(op, x.dtype(), Launch::columns(c, 1), &args)?;
    }
    Ok(y)
}
