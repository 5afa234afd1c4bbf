//! Row slicing and concatenation along dimension 0 on any device, as views of a tensor's
//! contiguous elements: [rows, …] is seen as [1, rows·per] and sliced or joined along its last
//! dimension by the channel ops (CPU and CUDA).

use crate::ops::channels::{concat_forward, narrow_forward};
use crate::{Error, Result, Tensor};

const OP: &str = "rows";

/// (rows, elements per row).
fn row_dims(t: &Tensor) -> Result<(usize, usize)> {
    match t.shape() {
        [] => Err(Error::shape(OP, "a scalar has no rows")),
        [n, rest @ ..] => Ok((*n, rest.iter().product())),
    }
}

/// Rows [start, start + len) of `t`.
pub fn narrow_rows(t: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    let (n, per) = row_dims(t)?;
    if start + len > n {
        return Err(Error::shape(
            OP,
            format!("rows {start}..{} of shape {:?}", start + len, t.shape()),
        ));
    }
    if start == 0 && len == n {
        return Ok(t.clone());
    }
    let mut shape = t.shape().to_vec();
    shape[0] = len;
    if len == 0 || per == 0 {
        return Tensor::zeros(&shape, t.dtype(), t.device());
    }
    let flat = t.reshape(&[1, n * per])?;
    narrow_forward(&flat, start * per, len * per)?.reshape(&shape)
}

/// The tensors of `parts` one after the other along dimension 0 (the other dimensions must
/// agree).
pub fn concat_rows(parts: &[Tensor]) -> Result<Tensor> {
    let first = parts
        .first()
        .ok_or_else(|| Error::shape(OP, "nothing to concatenate"))?;
    row_dims(first)?;
    let mut rows = 0;
    for p in parts {
        let (n, _) = row_dims(p)?;
        if p.shape()[1..] != first.shape()[1..] {
            return Err(Error::shape(
                OP,
                format!("rows of shape {:?} and {:?}", first.shape(), p.shape()),
            ));
        }
        rows += n;
    }
    if parts.len() == 1 {
        return Ok(first.clone());
    }
    let mut shape = first.shape().to_vec();
    shape[0] = rows;
    let flat: Vec<Tensor> = parts
        .iter()
        .filter(|p| p.numel() > 0)
        .map(|p| p.reshape(&[1, p.numel()]))
        .collect::<Result<_>>()?;
    if flat.is_empty() {
        return Tensor::zeros(&shape, first.dtype(), first.device());
    }
    let refs: Vec<&Tensor> = flat.iter().collect();
    concat_forward(&refs)?.reshape(&shape)
}
