//! Concatenation and slicing along the last dimension (channels in NHWC).

#[cfg(feature = "cuda")]
mod cuda;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
#[cfg(test)]
mod tests;

mod tape;
pub use tape::{concat_channels, narrow_channels};

use crate::ops::backend::Cpu;
use crate::{float_dispatch, on_backend, Error, Float, Result, Tensor};

/// What each backend provides for the channel copies (the CPU's and the GPU's implementations take the
/// same arguments: the compiler checks them against this trait).
pub(crate) trait ChannelsKernels {
    fn concat_forward(xs: &[&Tensor]) -> Result<Tensor>;
    fn narrow_forward(x: &Tensor, start: usize, len: usize) -> Result<Tensor>;
}

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
    on_backend!("concat_channels", slice xs, B => B::concat_forward(xs))
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
    on_backend!("narrow_channels", [x], B => B::narrow_forward(x, start, len))
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

impl ChannelsKernels for Cpu {
    fn concat_forward(xs: &[&Tensor]) -> Result<Tensor> {
        float_dispatch!("concat_channels", xs[0].dtype(), concat_cpu(xs))
    }
    fn narrow_forward(x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
        float_dispatch!("narrow_channels", x.dtype(), narrow_cpu(x, start, len))
    }
}
