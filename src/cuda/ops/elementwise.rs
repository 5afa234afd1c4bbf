//! Same-shape elementwise ops and the full sum (kernels/elementwise.cu).

use super::i64a;
use crate::cuda::device::SUM_BLOCKS;
use crate::cuda::module::{Arg, Launch, THREADS};
use crate::cuda::storage::{empty, gpu_of, ptr};
use crate::{Result, Tensor};

fn unary(op: &'static str, x: &Tensor, extra: Option<f32>) -> Result<Tensor> {
    let gpu = gpu_of(x, op)?;
    let y = empty(&gpu, x.shape(), x.dtype())?;
    let n = x.numel();
    if n > 0 {
        let mut args = vec![ptr(x, op)?, ptr(&y, op)?, i64a(n)];
        args.extend(extra.map(Arg::F32));
        gpu.launch_typed(op, x.dtype(), Launch::flat(n), &args)?;
    }
    Ok(y)
}

fn binary(op: &'static str, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let gpu = gpu_of(a, op)?;
    let y = empty(&gpu, a.shape(), a.dtype())?;
    let n = a.numel();
    if n > 0 {
        let args = [ptr(a, op)?, ptr(b, op)?, ptr(&y, op)?, i64a(n)];
        gpu.launch_typed(op, a.dtype(), Launch::flat(n), &args)?;
    }
    Ok(y)
}

pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary("add", a, b)
}
pub fn sub(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary("sub", a, b)
}
pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary("mul", a, b)
}
pub fn scale(a: &Tensor, s: f64) -> Result<Tensor> {
    unary("scale", a, Some(s as f32))
}
pub fn relu_forward(x: &Tensor) -> Result<Tensor> {
    unary("relu_forward", x, None)
}
pub fn relu_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    binary("relu_backward", x, dy)
}
pub fn exp(x: &Tensor) -> Result<Tensor> {
    unary("exp", x, None)
}
pub fn ln(x: &Tensor) -> Result<Tensor> {
    unary("ln", x, None)
}
pub fn recip(x: &Tensor) -> Result<Tensor> {
    unary("recip", x, None)
}

/// Sum of all elements as a tensor of shape [], accumulated in fp32 in a fixed order.
pub fn sum_all(x: &Tensor) -> Result<Tensor> {
    let op = "sum_all";
    let gpu = gpu_of(x, op)?;
    let y = empty(&gpu, &[], x.dtype())?;
    let n = x.numel();
    let blocks = n.div_ceil(THREADS as usize).clamp(1, SUM_BLOCKS);
    let cfg = Launch {
        grid: (blocks as u32, 1, 1),
        block: (THREADS, 1, 1),
    };
    let (counter, partial) = gpu.sum_scratch;
    let args = [
        ptr(x, op)?,
        i64a(n),
        Arg::Ptr(partial),
        Arg::Ptr(counter),
        ptr(&y, op)?,
    ];
    gpu.launch_typed(op, x.dtype(), cfg, &args)?;
    Ok(y)
}
