//! The bias half of linear layers (kernels/matmul.cu); products are in `cuda::blas`.

use crate::cuda::dims::dim;
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut};
use crate::cuda::module::Launch;
use crate::cuda::storage::{empty, gpu_of};
use crate::{Result, Tensor};

pub fn add_bias(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    let op = "add_bias";
    let gpu = gpu_of(x, op)?;
    let y = empty(&gpu, x.shape(), x.dtype())?;
    let n = x.numel();
    if n > 0 {
        let (n64, c32) = (dim(n, op)?, dim(x.last_dim(), op)?);
        with_dtype!(x.dtype(), op, T => {
            let (xp, bp) = (DevPtr::<T>::of(x, op)?, DevPtr::of(b, op)?);
            let yp = DevPtrMut::of(&y, op)?;
            k::add_bias(&gpu, Launch::flat(n), xp, bp, yp, n64, c32)
        })?;
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
        let (rows64, c32) = (dim(rows, op)?, dim(c, op)?);
        with_dtype!(x.dtype(), op, T => {
            let (xp, yp) = (DevPtr::<T>::of(x, op)?, DevPtrMut::of(&y, op)?);
            k::sum_rows(&gpu, Launch::columns(c, 1), xp, yp, rows64, c32)
        })?;
    }
    Ok(y)
}
