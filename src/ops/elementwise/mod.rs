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

use crate::{on_backend, Error, Result, Tensor};

/// What each backend provides for the elementwise ops (the CPU's and the GPU's implementations take the
/// same arguments: the compiler checks them against this trait).
pub(crate) trait ElementwiseKernels {
    fn add_forward(a: &Tensor, b: &Tensor) -> Result<Tensor>;
    fn sub_forward(a: &Tensor, b: &Tensor) -> Result<Tensor>;
    fn mul_forward(a: &Tensor, b: &Tensor) -> Result<Tensor>;
    fn scale_forward(x: &Tensor, s: f64) -> Result<Tensor>;
    fn relu_forward(x: &Tensor) -> Result<Tensor>;
    fn relu_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor>;
    fn exp_forward(x: &Tensor) -> Result<Tensor>;
    fn ln_forward(x: &Tensor) -> Result<Tensor>;
    fn recip_forward(x: &Tensor) -> Result<Tensor>;
    /// Sum of all elements as a tensor of shape [], accumulated in fp32 in a fixed order.
    fn sum_all(x: &Tensor) -> Result<Tensor>;
}

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
    on_backend!("add", [a, b], B => B::add_forward(a, b))
}
pub fn sub_forward(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("sub", a, b)?;
    on_backend!("sub", [a, b], B => B::sub_forward(a, b))
}
pub fn mul_forward(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("mul", a, b)?;
    on_backend!("mul", [a, b], B => B::mul_forward(a, b))
}
pub fn scale_forward(a: &Tensor, s: f64) -> Result<Tensor> {
    on_backend!("scale", [a], B => B::scale_forward(a, s))
}
pub fn relu_forward(x: &Tensor) -> Result<Tensor> {
    on_backend!("relu", [x], B => B::relu_forward(x))
}
pub fn relu_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    same_shape("relu_backward", x, dy)?;
    on_backend!("relu_backward", [x, dy], B => B::relu_backward(x, dy))
}
pub fn exp_forward(x: &Tensor) -> Result<Tensor> {
    on_backend!("exp", [x], B => B::exp_forward(x))
}
pub fn ln_forward(x: &Tensor) -> Result<Tensor> {
    on_backend!("ln", [x], B => B::ln_forward(x))
}
/// Sum of all elements, as a tensor of shape [].
pub fn sum_all(x: &Tensor) -> Result<Tensor> {
    on_backend!("sum", [x], B => B::sum_all(x))
}
/// A tensor shaped, typed and placed like `x`, filled with `v`.
pub fn full_like(x: &Tensor, v: f64) -> Result<Tensor> {
    Tensor::full(x.shape(), v, x.dtype(), x.device())
}

fn recip_forward(x: &Tensor) -> Result<Tensor> {
    on_backend!("recip", [x], B => B::recip_forward(x))
}
