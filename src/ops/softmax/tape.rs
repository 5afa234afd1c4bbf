//! The tape-recording form of the softmax ops: each forward on [`Var`]s records a closure
//! that calls the raw backward functions of [`super`].

use super::*;
use crate::autograd::{Tape, Var};

pub fn softmax(tape: &mut Tape, x: &Var) -> Result<Var> {
    let y = softmax_forward(x.value())?;
    let yv = y.clone();
    Ok(tape.record("softmax", &[x], y, move |dy, _| {
        Ok(vec![Some(softmax_backward(&yv, dy)?)])
    }))
}

pub fn log_softmax(tape: &mut Tape, x: &Var) -> Result<Var> {
    let y = log_softmax_forward(x.value())?;
    let yv = y.clone();
    Ok(tape.record("log_softmax", &[x], y, move |dy, _| {
        Ok(vec![Some(log_softmax_backward(&yv, dy)?)])
    }))
}
