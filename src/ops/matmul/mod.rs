//! Matrix products: `matmul` (A·B with optional transposes) and `linear` (x·Wᵀ + b, W [out, in]).

pub mod cpu;
pub mod gemm;
#[cfg(test)]
mod tests;

use crate::autograd::{Tape, Var};
use crate::{dispatch, float_dispatch, Error, Result, Tensor};

/// op(A)·op(B) where op transposes when asked; A and B are matrices.
pub fn matmul_forward(a: &Tensor, b: &Tensor, ta: bool, tb: bool) -> Result<Tensor> {
    let (ar, ac) = a.dims2("matmul")?;
    let (br, bc) = b.dims2("matmul")?;
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let (k2, n) = if tb { (bc, br) } else { (br, bc) };
    if k != k2 {
        return Err(Error::shape(
            "matmul",
            format!(
                "inner sizes differ: {:?}{} · {:?}{}",
                a.shape(),
                if ta { "ᵀ" } else { "" },
                b.shape(),
                if tb { "ᵀ" } else { "" }
            ),
        ));
    }
    dispatch!("matmul", [a, b], cpu: |dt| float_dispatch!("matmul", dt, cpu::matmul(a, b, ta, tb, m, k, n)),
        cuda: crate::cuda::blas::matmul(a, b, ta, tb, m, k, n))
}

pub fn matmul(tape: &mut Tape, a: &Var, b: &Var) -> Result<Var> {
    let y = matmul_forward(a.value(), b.value(), false, false)?;
    let (av, bv) = (a.value().clone(), b.value().clone());
    Ok(tape.record("matmul", &[a, b], y, move |dy, needs| {
        Ok(vec![
            if needs[0] {
                Some(matmul_forward(dy, &bv, false, true)?)
            } else {
                None
            },
            if needs[1] {
                Some(matmul_forward(&av, dy, true, false)?)
            } else {
                None
            },
        ])
    }))
}

/// Adds `b` [C] to every row of `x` [.., C].
pub fn add_bias_forward(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    if b.shape() != [x.last_dim()] {
        return Err(Error::shape(
            "add_bias",
            format!("bias {:?} for rows of {}", b.shape(), x.last_dim()),
        ));
    }
    dispatch!("add_bias", [x, b], cpu: |dt| float_dispatch!("add_bias", dt, cpu::add_bias(x, b)),
        cuda: crate::cuda::ops::add_bias(x, b))
}

/// Sum over all rows of `x` [.., C] → [C] (the bias gradient).
pub fn sum_rows_forward(x: &Tensor) -> Result<Tensor> {
    dispatch!("sum_rows", [x], cpu: |dt| float_dispatch!("sum_rows", dt, cpu::sum_rows(x)),
        cuda: crate::cuda::ops::sum_rows(x))
}

/// x [N, in] · Wᵀ (W [out, in]) + b [out].
pub fn linear(tape: &mut Tape, x: &Var, w: &Var, b: Option<&Var>) -> Result<Var> {
    let (_, fin) = x.value().dims2("linear")?;
    let (_, win) = w.value().dims2("linear")?;
    if fin != win {
        return Err(Error::shape(
            "linear",
            format!(
                "input {:?} has {fin} features, weight {:?} expects {win}",
                x.shape(),
                w.shape()
            ),
        ));
    }
    let mut y = matmul_forward(x.value(), w.value(), false, true)?;
    if let Some(b) = b {
        y = add_bias_forward(&y, b.value())?;
    }
    let (xv, wv) = (x.value().clone(), w.value().clone());
    let mut inputs = vec![x, w];
    inputs.extend(b);
    Ok(tape.record("linear", &inputs, y, move |dy, needs| {
        let mut r = vec![
            if needs[0] {
                Some(matmul_forward(dy, &wv, false, false)?)
            } else {
                None
            },
            if needs[1] {
                Some(matmul_forward(dy, &xv, true, false)?)
            } else {
                None
            },
        ];
        if needs.len() == 3 {
            r.push(if needs[2] {
                Some(sum_rows_forward(dy)?)
            } else {
                None
            });
        }
        Ok(r)
    }))
}
