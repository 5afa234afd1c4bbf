//! Cross-entropy of logits against integer labels, mean over the batch, fused with its gradient.

#[cfg(feature = "cuda")]
mod cuda;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
#[cfg(test)]
mod tests;

mod tape;
pub use tape::cross_entropy;

use crate::ops::backend::Cpu;
use crate::ops::softmax::logsumexp;
use crate::{float_dispatch, on_backend, Error, Float, Result, Tensor};

/// What each backend provides for the cross-entropy (the CPU's and the GPU's implementations take the
/// same arguments: the compiler checks them against this trait).
pub(crate) trait LossKernels {
    /// Returns (mean loss [], gradient of the mean loss w.r.t. the logits).
    fn cross_entropy_forward(logits: &Tensor, labels: &[usize]) -> Result<(Tensor, Tensor)>;
}

fn check(logits: &Tensor, labels: &[usize]) -> Result<(usize, usize)> {
    let (n, k) = logits.dims2("cross_entropy")?;
    if labels.len() != n {
        return Err(Error::shape(
            "cross_entropy",
            format!("{} labels for {n} rows of logits", labels.len()),
        ));
    }
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l >= k) {
        return Err(Error::shape(
            "cross_entropy",
            format!("label {l} of row {i} is out of range for {k} classes"),
        ));
    }
    if n == 0 {
        return Err(Error::shape("cross_entropy", "empty batch"));
    }
    Ok((n, k))
}

/// Returns (mean loss [], gradient of the mean loss w.r.t. the logits).
fn forward_cpu<T: Float>(logits: &Tensor, labels: &[usize]) -> Result<(Tensor, Tensor)> {
    let xs = logits.cpu_slice::<T>("cross_entropy")?;
    let k = logits.last_dim();
    let n = labels.len();
    let inv_n = T::ONE / T::from_usize(n);
    let mut loss = T::ZERO;
    let mut grad = vec![T::ZERO; xs.len()];
    for (i, (row, g)) in xs.chunks(k).zip(grad.chunks_mut(k)).enumerate() {
        let l = logsumexp(row);
        loss += l - row[labels[i]];
        for (gj, &v) in g.iter_mut().zip(row) {
            *gj = (v - l).exp() * inv_n;
        }
        g[labels[i]] -= inv_n;
    }
    Ok((
        Tensor::from_vec(vec![loss * inv_n], &[])?,
        Tensor::from_vec(grad, logits.shape())?,
    ))
}

pub fn cross_entropy_forward(logits: &Tensor, labels: &[usize]) -> Result<(Tensor, Tensor)> {
    check(logits, labels)?;
    on_backend!("cross_entropy", [logits], B => B::cross_entropy_forward(logits, labels))
}

impl LossKernels for Cpu {
    fn cross_entropy_forward(logits: &Tensor, labels: &[usize]) -> Result<(Tensor, Tensor)> {
        float_dispatch!("cross_entropy", logits.dtype(), forward_cpu(logits, labels))
    }
}
