//! Same-shape elementwise ops (add, sub, mul, scale, relu, exp, log) and full reductions.

pub mod cpu;
#[cfg(test)]
mod tests;

use crate::autograd::{Tape, Var};
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
    dispatch!("add", [a, b], cpu: |dt| float_dispatch!("add", dt, cpu::add(a, b)), cuda: crate::cuda::ops::add(a, b))
}
pub fn sub_tensors(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("sub", a, b)?;
    dispatch!("sub", [a, b], cpu: |dt| float_dispatch!("sub", dt, cpu::sub(a, b)), cuda: crate::cuda::ops::sub(a, b))
}
pub fn mul_tensors(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("mul", a, b)?;
    dispatch!("mul", [a, b], cpu: |dt| float_dispatch!("mul", dt, cpu::mul(a, b)), cuda: crate::cuda::ops::mul(a, b))
}
pub fn scale_tensor(a: &Tensor, s: f64) -> Result<Tensor> {
    dispatch!("scale", [a], cpu: |dt| float_dispatch!("scale", dt, cpu::scale(a, s)), cuda: crate::cuda::ops::scale(a, s))
}
pub fn relu_forward(x: &Tensor) -> Result<Tensor> {
    dispatch!("relu", [x], cpu: |dt| float_dispatch!("relu", dt, cpu::relu_forward(x)), cuda: crate::cuda::ops::relu_forward(x))
}
pub fn relu_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    same_shape("relu_backward", x, dy)?;
    dispatch!("relu_backward", [x, dy], cpu: |dt| float_dispatch!("relu_backward", dt, cpu::relu_backward(x, dy)), cuda: crate::cuda::ops::relu_backward(x, dy))
}
pub fn exp_tensor(x: &Tensor) -> Result<Tensor> {
    dispatch!("exp", [x], cpu: |dt| float_dispatch!("exp", dt, cpu::exp(x)), cuda: crate::cuda::ops::exp(x))
}
pub fn ln_tensor(x: &Tensor) -> Result<Tensor> {
    dispatch!("log", [x], cpu: |dt| float_dispatch!("log", dt, cpu::ln(x)), cuda: crate::cuda::ops::ln(x))
}
/// Sum of all elements, as a tensor of shape [].
pub fn sum_all(x: &Tensor) -> Result<Tensor> {
    dispatch!("sum", [x], cpu: |dt| float_dispatch!("sum", dt, cpu::sum_all(x)), cuda: crate::cuda::ops::sum_all(x))
}
/// A tensor shaped, typed and placed like `x`, filled with `v`.
pub fn full_like(x: &Tensor, v: f64) -> Result<Tensor> {
    Tensor::full(x.shape(), v, x.dtype(), x.device())
}

pub fn add(tape: &mut Tape, a: &Var, b: &Var) -> Result<Var> {
    let y = add_tensors(a.value(), b.value())?;
    Ok(tape.record("add", &[a, b], y, |g, _| {
        Ok(vec![Some(g.clone()), Some(g.clone())])
    }))
}

pub fn sub(tape: &mut Tape, a: &Var, b: &Var) -> Result<Var> {
    let y = sub_tensors(a.value(), b.value())?;
    Ok(tape.record("sub", &[a, b], y, |g, needs| {
        Ok(vec![
            Some(g.clone()),
            if needs[1] {
                Some(scale_tensor(g, -1.0)?)
            } else {
                None
            },
        ])
    }))
}

pub fn mul(tape: &mut Tape, a: &Var, b: &Var) -> Result<Var> {
    let y = mul_tensors(a.value(), b.value())?;
    let (av, bv) = (a.value().clone(), b.value().clone());
    Ok(tape.record("mul", &[a, b], y, move |g, needs| {
        Ok(vec![
            if needs[0] {
                Some(mul_tensors(g, &bv)?)
            } else {
                None
            },
            if needs[1] {
                Some(mul_tensors(g, &av)?)
            } else {
                None
            },
        ])
    }))
}

pub fn scale(tape: &mut Tape, a: &Var, s: f64) -> Result<Var> {
    let y = scale_tensor(a.value(), s)?;
    Ok(tape.record("scale", &[a], y, move |g, _| {
        Ok(vec![Some(scale_tensor(g, s)?)])
    }))
}

pub fn relu(tape: &mut Tape, x: &Var) -> Result<Var> {
    let y = relu_forward(x.value())?;
    let xv = x.value().clone();
    Ok(tape.record("relu", &[x], y, move |g, _| {
        Ok(vec![Some(relu_backward(&xv, g)?)])
    }))
}

pub fn exp(tape: &mut Tape, x: &Var) -> Result<Var> {
    let y = exp_tensor(x.value())?;
    let yv = y.clone();
    Ok(tape.record("exp", &[x], y, move |g, _| {
        Ok(vec![Some(mul_tensors(g, &yv)?)])
    }))
}

pub fn log(tape: &mut Tape, x: &Var) -> Result<Var> {
    let y = ln_tensor(x.value())?;
    let xv = x.value().clone();
    Ok(tape.record("log", &[x], y, move |g, _| {
        let inv = map_recip(&xv)?;
        Ok(vec![Some(mul_tensors(g, &inv)?)])
    }))
}

fn map_recip(x: &Tensor) -> Result<Tensor> {
    // 1/x = exp(-log x) would lose accuracy; use a direct map on the CPU.
    dispatch!("recip", [x], cpu: |dt| float_dispatch!("recip", dt, recip_cpu(x)), cuda: crate::cuda::ops::recip(x))
}
fn recip_cpu<T: crate::Float>(x: &Tensor) -> Result<Tensor> {
    cpu::map1::<T>("recip", x, |p| T::ONE / p)
}

/// Sum of all elements (shape []).
pub fn sum(tape: &mut Tape, x: &Var) -> Result<Var> {
    let y = sum_all(x.value())?;
    let xv = x.value().clone();
    Ok(tape.record("sum", &[x], y, move |g, _| {
        Ok(vec![Some(full_like(&xv, g.item()?)?)])
    }))
}

/// Mean of all elements (shape []).
pub fn mean(tape: &mut Tape, x: &Var) -> Result<Var> {
    let n = x.value().numel().max(1) as f64;
    let s = sum(tape, x)?;
    scale(tape, &s, 1.0 / n)
}

/// Same elements, new shape; the gradient is reshaped back.
pub fn reshape(tape: &mut Tape, x: &Var, shape: &[usize]) -> Result<Var> {
    let y = x.value().reshape(shape)?;
    let old = x.shape().to_vec();
    Ok(tape.record("reshape", &[x], y, move |g, _| {
        Ok(vec![Some(g.reshape(&old)?)])
    }))
}

/// `x` converted to `dtype` on the tape; the gradient is converted back. Mixed precision casts
/// fp32 master weights to the activations' dtype this way, so their gradients reach the
/// master copy in fp32.
pub fn cast(tape: &mut Tape, x: &Var, dtype: crate::DType) -> Result<Var> {
    if x.value().dtype() == dtype {
        return Ok(x.clone());
    }
    let y = x.value().to_dtype(dtype)?;
    let back = x.value().dtype();
    Ok(tape.record("cast", &[x], y, move |g, _| {
        Ok(vec![Some(g.to_dtype(back)?)])
    }))
}
