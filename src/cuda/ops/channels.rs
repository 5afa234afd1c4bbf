//! Concatenation and slicing along the last dimension (kernels/channels.cu).

use super::{i32a, i64a};
use crate::cuda::module::Launch;
use crate::cuda::storage::{empty, gpu_of, ptr};
use crate::{Result, Tensor};

pub fn concat_channels(xs: &[&Tensor]) -> Result<Tensor> {
    let op = "concat_channels";
    let gpu = gpu_of(xs[0], op)?;
    let mut shape = xs[0].shape().to_vec();
    let total: usize = xs.iter().map(|x| x.last_dim()).sum();
    let rows = xs[0].numel() / xs[0].last_dim().max(1);
    *shape.last_mut().unwrap_or(&mut 0) = total;
    let y = empty(&gpu, &shape, xs[0].dtype())?;
    let mut off = 0;
    for x in xs {
        let c = x.last_dim();
        if rows * c > 0 {
            let args = [
                ptr(x, op)?,
                i32a(c),
                ptr(&y, op)?,
                i32a(total),
                i32a(off),
                i64a(rows),
            ];
            gpu.launch_typed(op, x.dtype(), Launch::flat(rows * c), &args)?;
        }
        off += c;
    }
    Ok(y)
}

pub fn narrow_channels(x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    let op = "narrow_channels";
    let gpu = gpu_of(x, op)?;
    let c = x.last_dim();
    let rows = x.numel() / c.max(1);
    let mut shape = x.shape().to_vec();
    *shape.last_mut().unwrap_or(&mut 0) = len;
    let y = empty(&gpu, &shape, x.dtype())?;
    if rows * len > 0 {
        let args = [
            ptr(x, op)?,
            i32a(c),
            i32a(start),
            ptr(&y, op)?,
            i32a(len),
            i64a(rows),
        ];
        gpu.launch_typed(op, x.dtype(), Launch::flat(rows * len), &args)?;
    }
    Ok(y)
}
