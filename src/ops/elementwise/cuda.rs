//! Same-shape elementwise ops and the full sum (kernels/elementwise.cu).

use super::ElementwiseKernels;
use crate::cuda::device::SUM_BLOCKS;
use crate::cuda::dims::dim;
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut};
use crate::cuda::module::{Launch, THREADS};
use crate::cuda::storage::{empty, gpu_of};
use crate::ops::backend::Cuda;
use crate::{Result, Tensor};

#[derive(Clone, Copy)]
enum Unary {
    Relu,
    Exp,
    Ln,
    Recip,
}

#[derive(Clone, Copy)]
enum Binary {
    Add,
    Sub,
    Mul,
    ReluBackward,
}

fn unary(op: &'static str, which: Unary, x: &Tensor) -> Result<Tensor> {
    let gpu = gpu_of(x, op)?;
    let y = empty(&gpu, x.shape(), x.dtype())?;
    let n = x.numel();
    if n > 0 {
        let (cfg, n64) = (Launch::flat8(n), dim::<i64>(n, op)?);
        with_dtype!(x.dtype(), op, T => {
            let f = match which {
                Unary::Relu => k::relu_forward::<T>,
                Unary::Exp => k::exp_forward::<T>,
                Unary::Ln => k::ln_forward::<T>,
                Unary::Recip => k::recip_forward::<T>,
            };
            f(&gpu, cfg, DevPtr::of(x, op)?, DevPtrMut::of(&y, op)?, n64)
        })?;
    }
    Ok(y)
}

fn binary(op: &'static str, which: Binary, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let gpu = gpu_of(a, op)?;
    let y = empty(&gpu, a.shape(), a.dtype())?;
    let n = a.numel();
    if n > 0 {
        let (cfg, n64) = (Launch::flat8(n), dim::<i64>(n, op)?);
        with_dtype!(a.dtype(), op, T => {
            let f = match which {
                Binary::Add => k::add_forward::<T>,
                Binary::Sub => k::sub_forward::<T>,
                Binary::Mul => k::mul_forward::<T>,
                Binary::ReluBackward => k::relu_backward::<T>,
            };
            let (a, b) = (DevPtr::of(a, op)?, DevPtr::of(b, op)?);
            f(&gpu, cfg, a, b, DevPtrMut::of(&y, op)?, n64)
        })?;
    }
    Ok(y)
}

impl ElementwiseKernels for Cuda {
    fn add_forward(a: &Tensor, b: &Tensor) -> Result<Tensor> {
        binary("add", Binary::Add, a, b)
    }

    fn sub_forward(a: &Tensor, b: &Tensor) -> Result<Tensor> {
        binary("sub", Binary::Sub, a, b)
    }

    fn mul_forward(a: &Tensor, b: &Tensor) -> Result<Tensor> {
        binary("mul", Binary::Mul, a, b)
    }

    fn scale_forward(x: &Tensor, s: f64) -> Result<Tensor> {
        let op = "scale";
        let gpu = gpu_of(x, op)?;
        let y = empty(&gpu, x.shape(), x.dtype())?;
        let n = x.numel();
        if n > 0 {
            let (cfg, n64) = (Launch::flat8(n), dim::<i64>(n, op)?);
            with_dtype!(x.dtype(), op, T => {
                let (xp, yp) = (DevPtr::<T>::of(x, op)?, DevPtrMut::of(&y, op)?);
                k::scale_forward(&gpu, cfg, xp, yp, n64, s as f32)
            })?;
        }
        Ok(y)
    }

    fn relu_forward(x: &Tensor) -> Result<Tensor> {
        unary("relu_forward", Unary::Relu, x)
    }

    fn relu_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
        binary("relu_backward", Binary::ReluBackward, x, dy)
    }

    fn exp_forward(x: &Tensor) -> Result<Tensor> {
        unary("exp", Unary::Exp, x)
    }

    fn ln_forward(x: &Tensor) -> Result<Tensor> {
        unary("ln", Unary::Ln, x)
    }

    fn recip_forward(x: &Tensor) -> Result<Tensor> {
        unary("recip", Unary::Recip, x)
    }

    /// Sum of all elements as a tensor of shape [], accumulated in fp32 in a fixed order.
    fn sum_all(x: &Tensor) -> Result<Tensor> {
        let op = "sum_all";
        let gpu = gpu_of(x, op)?;
        let y = empty(&gpu, &[], x.dtype())?;
        let n = x.numel();
        let cfg = Launch {
            // 8 elements per thread per step (kernels/vec.cuh `flat_chunks`).
            grid: (n.div_ceil(8 * THREADS as usize).clamp(1, SUM_BLOCKS), 1, 1),
            block: (THREADS, 1, 1),
        };
        let (counter, partial) = gpu.sum_scratch;
        // The device's scratch: SUM_BLOCKS floats of partials and a counter the kernel leaves at 0.
        let (partial, done) =
            unsafe { (DevPtrMut::from_raw(partial), DevPtrMut::from_raw(counter)) };
        let n64 = dim::<i64>(n, op)?;
        with_dtype!(x.dtype(), op, T => {
            let (xp, yp) = (DevPtr::<T>::of(x, op)?, DevPtrMut::of(&y, op)?);
            k::sum_all(&gpu, cfg, xp, n64, partial, done, yp)
        })?;
        Ok(y)
    }
}
