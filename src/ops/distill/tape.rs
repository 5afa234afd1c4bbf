//! The tape-recording form of the distill ops: each forward on [`Var`]s records a closure
//! that calls the raw backward functions of [`super`].

use super::*;
use crate::autograd::{Tape, Var};

/// The distillation loss on the tape; `teacher` is a constant.
pub fn distill(
    tape: &mut Tape,
    student: &Var,
    teacher: &Tensor,
    labels: Option<&[usize]>,
    spec: DistillSpec,
) -> Result<Var> {
    let (loss, ds) = distill_forward(student.value(), teacher, labels, spec)?;
    Ok(tape.record(OP, &[student], loss, move |g, _| {
        Ok(vec![Some(crate::ops::elementwise::scale_forward(
            &ds,
            g.item()?,
        )?)])
    }))
}
