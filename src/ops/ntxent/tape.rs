//! The tape-recording form of the ntxent ops: each forward on [`Var`]s records a closure
//! that calls the raw backward functions of [`super`].

use super::*;
use crate::autograd::{Tape, Var};

/// NT-Xent on the tape (see the module doc for the convention). The queue is a constant.
pub fn ntxent(tape: &mut Tape, z: &Var, queue: Option<&Tensor>, tau: f64) -> Result<Var> {
    let (loss, dz) = ntxent_forward(z.value(), queue, tau)?;
    Ok(tape.record(OP, &[z], loss, move |g, _| {
        Ok(vec![Some(deferred::scale_by_upstream(&dz, g)?)])
    }))
}
