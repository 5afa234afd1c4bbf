//! Row-wise L2 normalisation (kernels/normalize.cu), one block per row.

use super::{i32a, row_threads};
use crate::cuda::module::{Arg, Launch};
use crate::cuda::storage::{empty, gpu_of, ptr};
use crate::ops::normalize::L2_EPS;
use crate::{Result, Tensor};

pub fn l2_normalize_forward(x: &Tensor) -> Result<Tensor> {
    let op = "l2_normalize_forward";
    let gpu = gpu_of(x, op)?;
    let y = empty(&gpu, x.shape(), x.dtype())?;
    let c = x.last_dim();
    let rows = x.numel() / c.max(1);
    if rows > 0 {
        let args = [ptr(x, op)?, ptr(&y, op)?, i32a(c), Arg::F32(L2_EPS as f32)];
        gpu.launch_typed(op, x.dtype(), Launch::rows(rows, row_threads(c)), &args)?;
    }
    Ok(y)
}

pub fn l2_normalize_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let op = "l2_normalize_backward";
    let gpu = gpu_of(x, op)?;
    let dx = empty(&gpu, x.shape(), x.dtype())?;
    let c = x.last_dim();
    let rows = x.numel() / c.max(1);
    if rows > 0 {
        let args = [
            ptr(x, op)?,
            ptr(dy, op)?,
            ptr(&dx, op)?,
            i32a(c),
            Arg::F32(L2_EPS as f32),
        ];
        gpu.launch_typed(op, x.dtype(), Launch::rows(rows, row_threads(c)), &args)?;
    }
    Ok(dx)
}
