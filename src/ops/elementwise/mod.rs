//! Same-shape elementwise ops (add, sub, mul, scale, relu, exp, log) and full reductions.

pub mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(test)]
mod tests;

mod tape;
pub use tape::{add, cast, exp, log, mean, mul, relu, reshape, scale, sub, sum};

use crate::{dispatch, float_dispatch, Error, Result, Tensor};

fn same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::shape(
            op,
            format!("operands of shape {:?} and {:?}", a.shape(), b.shape()),
        ));
    }
    Ok(())
}

pub fn add_tensors(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("add", a, b)?;
    dispatch!("add", [a, b], cpu: |dt| float_dispatch!("add", dt, cpu::add(a, b)), cuda: self::cuda::add(a, b))
}
pub fn sub_tensors(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("sub", a, b)?;
    dispatch!("sub", [a, b], cpu: |dt| float_dispatch!("sub", dt, cpu::sub(a, b)), cuda: self::cuda::sub(a, b))
}
pub fn mul_tensors(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("mul", a, b)?;
    dispatch!("mul", [a, b], cpu: |dt| float_dispatch!("mul", dt, cpu::mul(a, b)), cuda: self::cuda::mul(a, b))
}
pub fn scale_tensor(a: &Tensor, s: f64) -> Result<Tensor> {
    dispatch!("scale", [a], cpu: |dt| float_dispatch!("scale", dt, cpu::scale(a, s)), cuda: self::cuda::scale(a, s))
}
pub fn relu_forward(x: &Tensor) -> Result<Tensor> {
    dispatch!("relu", [x], cpu: |dt| float_dispatch!("relu", dt, cpu::relu_forward(x)), cuda: self::cuda::relu_forward(x))
}
pub fn relu_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    same_shape("relu_backward", x, dy)?;
    dispatch!("relu_backward", [x, dy], cpu: |dt| float_dispatch!("relu_backward", dt, cpu::relu_backward(x, dy)), cuda: self::cuda::relu_backward(x, dy))
}
pub fn exp_tensor(x: &Tensor) -> Result<Tensor> {
    dispatch!("exp", [x], cpu: |dt| float_dispatch!("exp", dt, cpu::exp(x)), cuda: self::cuda::exp(x))
}
pub fn ln_tensor(x: &Tensor) -> Result<Tensor> {
    dispatch!("log", [x], cpu: |dt| float_dispatch!("log", dt, cpu::ln(x)), cuda: self::cuda::ln(x))
}
/// Sum of all elements, as a tensor of shape [].
pub fn sum_all(x: &Tensor) -> Result<Tensor> {
    dispatch!("sum", [x], cpu: |dt| float_dispatch!("sum", dt, cpu::sum_all(x)), cuda: self::cuda::sum_all(x))
}
/// A tensor shaped, typed and placed like `x`, filled with `v`.
pub fn full_like(x: &Tensor, v: f64) -> Result<Tensor> {
    Tensor::full(x.shape(), v, x.dtype(), x.device())
}

fn map_recip(x: &Tensor) -> Result<Tensor> {
    // 1/x = exp(-log x) would lose accuracy; use a direct map on the CPU.
    dispatch!("recip", [x], cpu: |dt| float_dispatch!("recip", dt, recip_cpu(x)), cuda: self::cuda::recip(x))
}
fn recip_cpu<T: crate::Float>(x: &Tensor) -> Result<Tensor> {
    cpu::map1::<T>("recip", x, |p| T::ONE / p)
}
