//! Gradient caching for the contrastive loss: a big batch trained in micro-batches with the
//! activation memory of one micro-batch, and the parameter gradient of the big batch.
//!
//! NT-Xent couples every row with every other, so the batch cannot simply be split. Instead:
//! 1. pass 1 projects and normalises each micro-batch on an inference tape (nothing kept) and
//!    concatenates the normalised projections z;
//! 2. the loss and its gradient dz w.r.t. all of z are computed over the whole batch;
//! 3. pass 2 re-runs each micro-batch forward on a recording tape, normalisation included, and
//!    back-propagates its slice of dz; parameter gradients accumulate in the store.
//!
//! The cost is one extra forward per step.
//!
//! **Batch norm.** In eval mode (running statistics) each row's projection depends on that row
//! alone, so the result equals the one-big-batch gradient up to float rounding, for any
//! partition of the rows. In train mode the statistics are those of each micro-batch (as with
//! per-device BN without cross-replica sync), so the objective differs from one-big-batch
//! training; both forwards of a micro-batch see the same statistics, so the gradient is exact
//! for that micro-batch-BN objective, and with one micro-batch it equals the plain step.
//! Pass 1 must not touch the running statistics: we snapshot them before it and put them back
//! after it (tensors share their storage, so the snapshot costs a reference count per buffer,
//! where cloning the store would copy every parameter). Pass 2 then folds each micro-batch's
//! statistics into the running averages once, in order, as consecutive steps of that batch size
//! would.

use super::model::SimClrNet;
use super::step_stats::StepStats;
use crate::autograd::Tape;
use crate::comm::{gather_views_placed, narrow_rows, Communicator};
use crate::nn::ActivationPolicy;
use crate::ops;
use crate::params::{ParamId, ParamStore};
use crate::{Error, Result, Tensor};

/// One contrastive step over `views` ([2B, H, W, C]: the B view-a images, then their B view-b
/// images) in micro-batches of at most `micro` rows. Leaves the step's parameter gradients
/// accumulated in `store` (as `Tape::backward` does) and returns the loss and contrastive
/// accuracy, left on the device until read.
///
/// With `comm`, as one rank of a data-parallel step: `views` is then this rank's share
/// [a_r; b_r], micro-batched on its own (BN statistics per micro-batch, as without ranks); the
/// normalised projections of all ranks are gathered, so the loss is the global batch's, and
/// this rank back-propagates its rows of its gradient. The parameter gradients left in `store`
/// are this rank's part: the caller sums them over the ranks.
#[allow(clippy::too_many_arguments)] // the step's inputs and its switches
pub fn contrastive_step_cached(
    comm: Option<&dyn Communicator>,
    net: &SimClrNet,
    store: &mut ParamStore,
    views: &Tensor,
    micro: usize,
    tau: f64,
    queue: Option<&Tensor>,
    train_bn: bool,
    policy: ActivationPolicy,
) -> Result<StepStats> {
    if micro == 0 {
        return Err(Error::Config("micro-batch size must be at least 1".into()));
    }
    let chunks = split_rows(views, micro)?;

    // Pass 1: projections only, with the running statistics restored afterwards.
    let saved = running_stats(store);
    let mut z_parts = Vec::with_capacity(chunks.len());
    for x in &chunks {
        let mut tape = Tape::inference();
        let xv = tape.constant(x.clone());
        let z = net.project(&mut policy.ctx(&mut tape, store, train_bn), &xv)?;
        z_parts.push(ops::normalize::l2_normalize_forward(z.value())?);
    }
    for (id, t) in saved {
        store.set_value(id, t)?;
    }
    let z_mine = concat_rows(&z_parts)?;
    drop(z_parts);
    // The gather's placement of this rank's rows also takes them back out of dz.
    let (z_all, placement) = match comm.filter(|c| c.world_size() > 1) {
        Some(c) => {
            let (z, p) = gather_views_placed(c, &z_mine)?;
            (z, Some(p))
        }
        None => (z_mine, None),
    };

    let (loss, dz) = ops::ntxent::ntxent_forward(&z_all, queue, tau)?;
    let accuracy = ops::ntxent::ntxent_accuracy_deferred(&z_all, queue)?;
    let dz = match &placement {
        Some(p) => p.own(&dz)?,
        None => dz,
    };
    let dz_parts = split_rows(&dz, micro)?;

    // Pass 2: recompute each micro-batch on a tape and seed its backward with its slice of dz.
    for (x, g) in chunks.iter().zip(dz_parts) {
        let mut tape = policy.tape();
        let xv = tape.constant(x.clone());
        let z = net.project(&mut policy.ctx(&mut tape, store, train_bn), &xv)?;
        let zn = ops::l2_normalize(&mut tape, &z)?;
        tape.backward_from(&[(&zn, g)], store)?;
    }
    Ok(StepStats { loss, accuracy })
}

/// The current values of the buffers (BN running statistics).
pub fn running_stats(store: &ParamStore) -> Vec<(ParamId, Tensor)> {
    store
        .ids()
        .filter(|&id| !store.is_trainable(id))
        .filter_map(|id| store.value(id).ok().map(|t| (id, t.clone())))
        .collect()
}

/// Splits along the first dimension into consecutive pieces of at most `size` rows, on the
/// tensor's device (exact copies; nothing crosses to the host).
pub fn split_rows(t: &Tensor, size: usize) -> Result<Vec<Tensor>> {
    let n = *t
        .shape()
        .first()
        .ok_or_else(|| Error::shape("split_rows", "a scalar has no rows"))?;
    (0..n)
        .step_by(size.max(1))
        .map(|start| narrow_rows(t, start, size.min(n - start)))
        .collect()
}

/// Concatenates along the first dimension (the inverse of [`split_rows`]), on the device.
pub fn concat_rows(parts: &[Tensor]) -> Result<Tensor> {
    if parts.iter().any(|p| p.rank() == 0) || parts.is_empty() {
        return Err(Error::shape(
            "concat_rows",
            "needs at least one tensor with rows",
        ));
    }
    crate::comm::concat_rows(parts)
}
