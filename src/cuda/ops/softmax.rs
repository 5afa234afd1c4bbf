//! Softmax and log-softmax over the last dimension (kernels/softmax.cu), one block per row.

use super::{i32a, row_threads};
use crate::cuda::module::Launch;
use crate::cuda::storage::{empty, gpu_of, ptr};
use crate::{Result, Tensor};

fn forward(op: &'static str, x: &Tensor) -> Result<Tensor> {
    let gpu = gpu_of(x, op)?;
    let y = empty(&gpu, x.shape(), x.dtype())?;
    let c = x.last_dim();
    let rows = x.numel() / c.max(1);
    if rows > 0 {
        let args = [ptr(x, op)?, ptr(&y, op)?, i32a(c)];
        gpu.launch_typed(op, x.dtype(), Launch::rows(rows, row_threads(c)), &args)?;
    }
    Ok(y)
}

fn backward(op: &'static str, y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let gpu = gpu_of(y, op)?;
    let dx = empty(&gpu, y.shape(), y.dtype())?;
    let c = y.last_dim();
    let rows = y.numel() / c.max(1);
    if rows > 0 {
        let args = [ptr(y, op)?, ptr(dy, op)?, ptr(&dx, op)?, i32a(c)];
        gpu.launch_typed(op, y.dtype(), Launch::rows(rows, row_threads(c)), &args)?;
    }
    Ok(dx)
}

pub fn softmax_forward(x: &Tensor) -> Result<Tensor> {
    forward("softmax_forward", x)
}
pub fn log_softmax_forward(x: &Tensor) -> Result<Tensor> {
    forward("log_softmax_forward", x)
}
pub fn softmax_backward(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    backward("softmax_backward", y, dy)
}
pub fn log_softmax_backward(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    backward("log_softmax_backward", y, dy)
}
