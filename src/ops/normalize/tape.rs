//! The tape-recording form of the normalize ops: each forward on [`Var`]s records a closure
//! that calls the raw backward functions of [`super`].

use super::*;
use crate::autograd::{Tape, Var};

pub fn l2_normalize(tape: &mut Tape, x: &Var) -> Result<Var> {
    let y = l2_normalize_forward(x.value())?;
    let xv = x.value().clone();
    Ok(tape.record("l2_normalize", &[x], y, move |dy, _| {
        Ok(vec![Some(l2_normalize_backward(&xv, dy)?)])
    }))
}
