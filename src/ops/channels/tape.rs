//! The tape-recording form of the channels ops: each forward on [`Var`]s records a closure
//! that calls the raw backward functions of [`super`].

use super::*;
use crate::autograd::{Tape, Var};

/// Concatenates along the last dimension.
pub fn concat_channels(tape: &mut Tape, xs: &[&Var]) -> Result<Var> {
    let vals: Vec<&Tensor> = xs.iter().map(|v| v.value()).collect();
    let y = concat_forward(&vals)?;
    let widths: Vec<usize> = vals.iter().map(|t| t.last_dim()).collect();
    Ok(tape.record("concat_channels", xs, y, move |dy, needs| {
        let mut start = 0;
        let mut out = Vec::with_capacity(widths.len());
        for (&c, &need) in widths.iter().zip(needs) {
            out.push(if need {
                Some(narrow_forward(dy, start, c)?)
            } else {
                None
            });
            start += c;
        }
        Ok(out)
    }))
}

/// Channels [start, start + len); the gradient is zero outside them.
pub fn narrow_channels(tape: &mut Tape, x: &Var, start: usize, len: usize) -> Result<Var> {
    let y = narrow_forward(x.value(), start, len)?;
    let c = x.value().last_dim();
    Ok(tape.record("narrow_channels", &[x], y, move |dy, _| {
        let mut lead = dy.shape().to_vec();
        let mut parts = Vec::new();
        let (before, after);
        if start > 0 {
            *lead.last_mut().unwrap() = start;
            before = Tensor::zeros(&lead, dy.dtype(), dy.device())?;
            parts.push(&before);
        }
        parts.push(dy);
        if start + len < c {
            *lead.last_mut().unwrap() = c - start - len;
            after = Tensor::zeros(&lead, dy.dtype(), dy.device())?;
            parts.push(&after);
        }
        Ok(vec![Some(concat_forward(&parts)?)])
    }))
}
