//! The tape-recording form of the elementwise ops: each forward on [`Var`]s records a closure
//! that calls the raw backward functions of [`super`].

use super::*;
use crate::autograd::{Tape, Var};

pub fn add(tape: &mut Tape, a: &Var, b: &Var) -> Result<Var> {
    let y = add_forward(a.value(), b.value())?;
    Ok(tape.record("add", &[a, b], y, |g, _| {
        Ok(vec![Some(g.clone()), Some(g.clone())])
    }))
}

pub fn sub(tape: &mut Tape, a: &Var, b: &Var) -> Result<Var> {
    let y = sub_forward(a.value(), b.value())?;
    Ok(tape.record("sub", &[a, b], y, |g, needs| {
        Ok(vec![
            Some(g.clone()),
            if needs[1] {
                Some(scale_forward(g, -1.0)?)
            } else {
                None
            },
        ])
    }))
}

pub fn mul(tape: &mut Tape, a: &Var, b: &Var) -> Result<Var> {
    let y = mul_forward(a.value(), b.value())?;
    let (av, bv) = (a.value().clone(), b.value().clone());
    Ok(tape.record("mul", &[a, b], y, move |g, needs| {
        Ok(vec![
            if needs[0] {
                Some(mul_forward(g, &bv)?)
            } else {
                None
            },
            if needs[1] {
                Some(mul_forward(g, &av)?)
            } else {
                None
            },
        ])
    }))
}

pub fn scale(tape: &mut Tape, a: &Var, s: f64) -> Result<Var> {
    let y = scale_forward(a.value(), s)?;
    Ok(tape.record("scale", &[a], y, move |g, _| {
        Ok(vec![Some(scale_forward(g, s)?)])
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
    let y = exp_forward(x.value())?;
    let yv = y.clone();
    Ok(tape.record("exp", &[x], y, move |g, _| {
        Ok(vec![Some(mul_forward(g, &yv)?)])
    }))
}

pub fn ln(tape: &mut Tape, x: &Var) -> Result<Var> {
    let y = ln_forward(x.value())?;
    let xv = x.value().clone();
    Ok(tape.record("ln", &[x], y, move |g, _| {
        let inv = recip_forward(&xv)?;
        Ok(vec![Some(mul_forward(g, &inv)?)])
    }))
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
