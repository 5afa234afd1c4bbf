//! Batch normalisation over the last dimension (NHWC channels, or features of [N, C]).
//!
//! Train mode normalises with the batch's statistics and returns them, so the caller can update
//! its running averages; eval mode normalises with given running statistics. With a
//! communicator of several ranks, train mode is *synchronised* batch norm: the statistics are
//! those of every rank's rows together (the same function, with an all-reduce between the
//! backward's two steps; see `tape.rs`).

pub mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;
#[cfg(feature = "cuda")]
pub(crate) mod cuda_backward;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
pub mod running;
#[cfg(test)]
mod tests;

mod tape;
pub use tape::{batch_norm, BnMode};
pub(crate) use tape::{global_statistics, reduced_sums, sync_comm};

use crate::{on_backend, Error, Result, Tensor};
pub use running::{
    batch_norm_train_forward_running, bn_act_stats_running, running_update, Running,
};

/// What each backend provides (the CPU in cpu.rs, the GPU in cuda.rs); `mod.rs` checks the
/// operands and assembles the backward from the two steps.
pub(crate) trait BatchNormKernels {
    /// (y, batch mean, batch invstd, unbiased batch variance).
    fn train_forward(
        x: &Tensor,
        gamma: &Tensor,
        beta: Option<&Tensor>,
        eps: f64,
    ) -> Result<(Tensor, Tensor, Tensor, Tensor)>;
    /// (y, invstd) with the running statistics (eval mode).
    fn eval_forward(
        x: &Tensor,
        gamma: &Tensor,
        beta: Option<&Tensor>,
        mean: &Tensor,
        var: &Tensor,
        eps: f64,
    ) -> Result<(Tensor, Tensor)>;
    /// (Σ dy·x̂, Σ dy) = (dgamma, dbeta).
    fn grad_sums(
        x: &Tensor,
        dy: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
    ) -> Result<(Tensor, Tensor)>;
    /// dx from the sums over the `count` rows of the statistics (`None`: eval mode).
    fn backward_from_sums(
        x: &Tensor,
        dy: &Tensor,
        gamma: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
        sums: (&Tensor, &Tensor),
        count: Option<usize>,
    ) -> Result<Tensor>;
}

/// The statistics of a train-mode batch: the mean and the *unbiased* variance (what PyTorch
/// folds into its running variance).
pub struct BatchStats {
    pub mean: Tensor,
    pub var_unbiased: Tensor,
    /// The updated running averages (mean, var) when the mode gave them.
    pub running: Option<(Tensor, Tensor)>,
}

fn check(x: &Tensor, gamma: &Tensor, beta: Option<&Tensor>) -> Result<usize> {
    let c = x.last_dim();
    if x.rank() < 2 || x.numel() == 0 {
        return Err(Error::shape(
            "batch_norm",
            format!(
                "input must have rank >= 2 and elements, got {:?}",
                x.shape()
            ),
        ));
    }
    for (what, t) in [("gamma", Some(gamma)), ("beta", beta)] {
        if let Some(t) = t {
            if t.shape() != [c] {
                return Err(Error::shape(
                    "batch_norm",
                    format!("{what} has shape {:?}, input has {c} channels", t.shape()),
                ));
            }
        }
    }
    // gamma and beta live with x, in x's dtype or its accumulator dtype (mixed precision keeps
    // f32 parameters for bf16 activations; the GPU kernels read either as f32).
    for t in std::iter::once(gamma).chain(beta) {
        let dt_ok = t.dtype() == x.dtype() || t.dtype() == x.dtype().accumulator();
        if t.device() != x.device() || !dt_ok {
            return Err(Error::dtype(
                "batch_norm",
                format!(
                    "parameters must be {} on {} for {} {} input, got {} on {}",
                    x.dtype().accumulator().name(),
                    x.device(),
                    x.dtype().name(),
                    x.device(),
                    t.dtype().name(),
                    t.device()
                ),
            ));
        }
    }
    Ok(c)
}

pub fn batch_norm_train_forward(
    x: &Tensor,
    gamma: &Tensor,
    beta: Option<&Tensor>,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
    check(x, gamma, beta)?;
    on_backend!("batch_norm", [x], B => B::train_forward(x, gamma, beta, eps))
}

pub fn batch_norm_eval_forward(
    x: &Tensor,
    gamma: &Tensor,
    beta: Option<&Tensor>,
    mean: &Tensor,
    var: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor)> {
    let c = check(x, gamma, beta)?;
    if mean.shape() != [c] || var.shape() != [c] {
        return Err(Error::shape(
            "batch_norm",
            format!(
                "running statistics of shape {:?}/{:?} for {c} channels",
                mean.shape(),
                var.shape()
            ),
        ));
    }
    on_backend!("batch_norm", [x], B => B::eval_forward(x, gamma, beta, mean, var, eps))
}

/// Returns (dx, dgamma, dbeta), assembled from the backends' two primitive steps: the gradient
/// sums, then dx from them. With `batch_stats`, mean and invstd are the batch's own (train
/// mode) and dx gets their two extra terms; without, they are constants (eval mode).
pub fn batch_norm_backward(
    x: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    batch_stats: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (dgamma, dbeta) = batch_norm_grad_sums(x, dy, mean, invstd)?;
    let rows = x.numel() / x.last_dim();
    let sums = (&dgamma, &dbeta);
    let count = batch_stats.then_some(rows);
    let dx = batch_norm_backward_from_sums(x, dy, gamma, mean, invstd, sums, count)?;
    Ok((dx, dgamma, dbeta))
}

/// The per-channel sums of the train-mode backward, (Σ dy·x̂, Σ dy) = (dgamma, dbeta): the
/// part of the backward that data-parallel BN adds up across ranks before [`batch_norm_backward_from_sums`].
pub fn batch_norm_grad_sums(
    x: &Tensor,
    dy: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let op = "batch_norm_backward";
    if dy.shape() != x.shape() {
        return Err(Error::shape(
            op,
            format!("gradient {:?} for input {:?}", dy.shape(), x.shape()),
        ));
    }
    on_backend!(op, [x, dy], B => B::grad_sums(x, dy, mean, invstd))
}

/// dx from the sums (dgamma, dbeta) of [`batch_norm_grad_sums`] over the `count` rows the
/// statistics were taken from (possibly on several ranks, of which `x` holds some); `None`:
/// eval mode, the statistics are constants.
pub fn batch_norm_backward_from_sums(
    x: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    (dgamma, dbeta): (&Tensor, &Tensor),
    count: Option<usize>,
) -> Result<Tensor> {
    let op = "batch_norm_backward";
    let c = x.last_dim();
    if dy.shape() != x.shape() || dgamma.shape() != [c] || dbeta.shape() != [c] {
        return Err(Error::shape(
            op,
            format!(
                "gradient {:?}, sums {:?}/{:?} for input {:?}",
                dy.shape(),
                dgamma.shape(),
                dbeta.shape(),
                x.shape()
            ),
        ));
    }
    let rows = x.numel() / c.max(1);
    if let Some(count) = count.filter(|&n| n < rows) {
        return Err(Error::shape(
            op,
            format!("statistics over {count} rows cannot include the {rows} rows of the input"),
        ));
    }
    let sums = (dgamma, dbeta);
    on_backend!(op, [x, dy], B => B::backward_from_sums(x, dy, gamma, mean, invstd, sums, count))
}
