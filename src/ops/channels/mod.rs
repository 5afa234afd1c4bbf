//! Concatenation and slicing along the last dimension (channels in NHWC).

#[cfg(test)]
mod tests;

use crate::autograd::{Tape, Var};
use crate::{dispatch, float_dispatch, Error, Float, Result, Tensor};

fn leading(t: &Tensor) -> (Vec<usize>, usize) {
    let s = t.shape();
    (s[..s.len() - 1].to_vec(), s[s.len() - 1])
}

pub fn concat_forward(xs: &[&Tensor]) -> Result<Tensor> {
    if xs.is_empty() {
        return Err(Error::shape("concat_channels", "nothing to concatenate"));
    }
    let (lead, _) = leading(xs[0]);
    for x in xs {
        if x.rank() == 0 || leading(x).0 != lead {
            return Err(Error::shape(
                "concat_channels",
                format!(
                    "shapes {:?} and {:?} differ before the last dimension",
                    xs[0].shape(),
                    x.shape()
                ),
            ));
        }
    }
    dispatch!("concat_channels", slice xs, cpu: |dt| float_dispatch!("concat_channels", dt, concat_cpu(xs)),
        cuda: crate::cuda::ops::concat_channels(xs))
}

fn concat_cpu<T: Float>(xs: &[&Tensor]) -> Result<Tensor> {
    let (mut lead, _) = leading(xs[0]);
    let rows: usize = lead.iter().product();
    let widths: Vec<usize> = xs.iter().map(|x| x.last_dim()).collect();
    let total: usize = widths.iter().sum();
    let slices: Vec<&[T]> = xs
        .iter()
        .map(|x| x.cpu_slice::<T>("concat_channels"))
        .collect::<Result<_>>()?;
    let mut out = Vec::with_capacity(rows * total);
    for r in 0..rows {
        for (s, &c) in slices.iter().zip(&widths) {
            out.extend_from_slice(&s[r * c..(r + 1) * c]);
        }
    }
    lead.push(total);
    Tensor::from_vec(out, &lead)
}

/// Channels [start, start + len) of the last dimension.
pub fn narrow_forward(x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    if x.rank() == 0 || start + len > x.last_dim() {
        return Err(Error::shape(
            "narrow_channels",
            format!("channels {start}..{} of shape {:?}", start + len, x.shape()),
        ));
    }
    dispatch!("narrow_channels", [x], cpu: |dt| float_dispatch!("narrow_channels", dt, narrow_cpu(x, start, len)),
        cuda: crate::cuda::ops::narrow_channels(x, start, len))
}

fn narrow_cpu<T: Float>(x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    let (mut lead, c) = leading(x);
    let xs = x.cpu_slice::<T>("narrow_channels")?;
    let out: Vec<T> = xs
        .chunks(c)
        .flat_map(|row| row[start..start + len].iter().copied())
        .collect();
    lead.push(len);
    Tensor::from_vec(out, &lead)
}

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
