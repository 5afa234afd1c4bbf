//! The tape-recording form of the matmul ops: each forward on [`Var`]s records a closure
//! that calls the raw backward functions of [`super`].

use super::*;
use crate::autograd::{Tape, Var};

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
