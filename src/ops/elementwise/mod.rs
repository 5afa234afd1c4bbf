//! Same-shape elementwise ops (add, sub, mul, scale, relu, exp, ln) and full reductions. Names
//! follow the rule of [`crate::ops`]: the raw `add_forward` is `cpu::add_forward::<T>` on the
//! CPU and the kernel `add_forward_<dtype>` on the GPU; the tape function is `add`.

pub mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
#[cfg(test)]
mod tests;

mod tape;
pub use tape::{add, cast, exp, ln, mean, mul, relu, reshape, scale, sub, sum};

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

pub fn add_forward(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("add", a, b)?;
    dispatch!("add", [a, b], cpu: |dt| float_dispatch!("add", dt, cpu::add_forward(a, b)), cuda: self::cuda::add_forward(a, b))
}
pub fn sub_forward(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("sub", a, b)?;
    dispatch!("sub", [a, b], cpu: |dt| float_dispatch!("sub", dt, cpu::sub_forward(a, b)), cuda: self::cuda::sub_forward(a, b))
}
pub fn mul_forward(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("mul", a, b)?;
    dispatch!("mul", [a, b], cpu: |dt| float_dispatch!("mul", dt, cpu::mul_forward(a, b)), cuda: self::cuda::mul_forward(a, b))
}
pub fn scale_forward(a: &Tensor, s: f64) -> Result<Tensor> {
    dispatch!("scale", [a], cpu: |dt| float_dispatch!("scale", dt, cpu::scale_forward(a, s)), cuda: self::cuda::scale_forward(a, s))
}
pub fn relu_forward(x: &Tensor) -> Result<Tensor> {
    dispatch!("relu", [x], cpu: |dt| float_dispatch!("relu", dt, cpu::relu_forward(x)), cuda: self::cuda::relu_forward(x))
}
pub fn relu_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    same_shape("relu_backward", x, dy)?;
    dispatch!("relu_backward", [x, dy], cpu: |dt| float_dispatch!("relu_backward", dt, cpu::relu_backward(x, dy)), cuda: self::cuda::relu_backward(x, dy))
}
pub fn exp_forward(x: &Tensor) -> Result<Tensor> {
    dispatch!("exp", [x], cpu: |dt| float_dispatch!("exp", dt, cpu::exp_forward(x)), cuda: self::cuda::exp_forward(x))
}
pub fn ln_forward(x: &Tensor) -> Result<Tensor> {
    dispatch!("ln", [x], cpu: |dt| float_dispatch!("ln", dt, cpu::ln_forward(x)), cuda: self::cuda::ln_forward(x))
}
/// Sum of all elements, as a tensor of shape [].
pub fn sum_all(x: &Tensor) -> Result<Tensor> {
    dispatch!("sum", [x], cpu: |dt| float_dispatch!("sum", dt, cpu::sum_all(x)), cuda: self::cuda::sum_all(x))
}
/// A tensor shaped, typed and placed like `x`, filled with `v`.
pub fn full_like(x: &Tensor, v: f64) -> Result<Tensor> {
    Tensor::full(x.shape(), v, x.dtype(), x.device())
}

fn recip_forward(x: &Tensor) -> Result<Tensor> {
    // 1/x = exp(-log x) would lose accuracy; use a direct map on the CPU.
    dispatch!("recip", [x], cpu: |dt| float_dispatch!("recip", dt, recip_cpu(x)), cuda: self::cuda::recip_forward(x))
}
fn recip_cpu<T: crate::Float>(x: &Tensor) -> Result<Tensor> {
    cpu::map1::<T>("recip", x, |p| T::ONE / p)
}
