//! The tape-recording form of the conv2d ops: each forward on [`Var`]s records a closure
//! that calls the raw backward functions of [`super`].

use super::*;
use crate::autograd::{Tape, Var};

pub fn conv2d(tape: &mut Tape, x: &Var, w: &Var, spec: Conv2dSpec) -> Result<Var> {
    let y = conv2d_forward(x.value(), w.value(), &spec)?;
    let (xs, x_shape, wv) = (tape.save(x), x.shape().to_vec(), w.value().clone());
    Ok(tape.record("conv2d", &[x, w], y, move |dy, needs| {
        Ok(vec![
            if needs[0] {
                Some(conv2d_backward_input(dy, &wv, &x_shape, &spec)?)
            } else {
                None
            },
            if needs[1] {
                Some(conv2d_backward_weight(&xs.get()?, dy, wv.shape(), &spec)?)
            } else {
                None
            },
        ])
    }))
}
