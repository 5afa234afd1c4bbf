//! The tape-recording form of the loss ops: each forward on [`Var`]s records a closure
//! that calls the raw backward functions of [`super`].

use super::*;
use crate::autograd::{Tape, Var};

/// Mean over rows of −log softmax(logits)[label].
pub fn cross_entropy(tape: &mut Tape, logits: &Var, labels: &[usize]) -> Result<Var> {
    let (loss, grad) = cross_entropy_forward(logits.value(), labels)?;
    Ok(tape.record("cross_entropy", &[logits], loss, move |g, _| {
        Ok(vec![Some(crate::ops::elementwise::scale_forward(
            &grad,
            g.item()?,
        )?)])
    }))
}
