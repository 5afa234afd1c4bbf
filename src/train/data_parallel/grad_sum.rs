//! One data-parallel contrastive step on a rank's shard (see the module doc of
//! [`crate::dist`] for what it computes and why the gradients are summed).

use super::buckets::with_grads;
use super::{gather_views, BucketedReduce, Buckets, Comm, Communicator, Event, DEFAULT_BUCKET_MB};
use crate::nn::ActivationPolicy;
use crate::ops;
use crate::params::ParamStore;
use crate::profile::{self, Phase};
use crate::train::contrastive_step::contrastive_step as single_step;
use crate::train::model::SimClrNet;
use crate::{Result, Tensor};

/// What a step reports: the loss and contrastive accuracy of the global batch (the same on
/// every rank).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepOutput {
    pub loss: f64,
    pub accuracy: f64,
}

/// Forward of this rank's `views` ([2n, H, W, C]: its n view-a images, then their view-b
/// images) with synchronised BN, gather of the normalised projections, NT-Xent of the global
/// batch (with the memory queue's `negatives`), backward, and the all-reduce (sum) of the
/// parameter gradients. Leaves the global batch's gradient in `store`, as `Tape::backward`
/// does. `policy` sets the activations' dtype and recomputation. A world of one runs the
/// single-process step itself ([`crate::train::contrastive_step`]).
pub fn contrastive_step(
    comm: &Comm,
    net: &SimClrNet,
    store: &mut ParamStore,
    views: &Tensor,
    tau: f64,
    negatives: Option<&Tensor>,
    policy: ActivationPolicy,
) -> Result<StepOutput> {
    let buckets = Buckets::new(store, DEFAULT_BUCKET_MB)?;
    let out = contrastive_step_bucketed(
        comm,
        net,
        store,
        views,
        tau,
        negatives,
        policy,
        Some(&buckets),
    )?;
    Ok(out.0)
}

/// [`contrastive_step`] with the gradients all-reduced in `buckets` while backward runs
/// ([`super::buckets`]), or after backward in one call when `None`; also returns the order of
/// the buckets' events (empty without buckets or in a world of one).
#[allow(clippy::too_many_arguments)]
pub fn contrastive_step_bucketed(
    comm: &Comm,
    net: &SimClrNet,
    store: &mut ParamStore,
    views: &Tensor,
    tau: f64,
    negatives: Option<&Tensor>,
    policy: ActivationPolicy,
    buckets: Option<&Buckets>,
) -> Result<(StepOutput, Vec<Event>)> {
    if comm.world_size() == 1 {
        let (loss, accuracy) =
            single_step(net, store, views, None, tau, negatives, policy)?.read()?;
        return Ok((StepOutput { loss, accuracy }, Vec::new()));
    }
    let mut tape = policy.tape();
    let forward = profile::phase(Phase::Forward);
    let x = tape.constant(views.clone());
    let z = net.project(
        &mut policy.ctx(&mut tape, store, true).with_comm(comm.clone()),
        &x,
    )?;
    let zn = ops::l2_normalize(&mut tape, &z)?;
    let zg = gather_views(&mut tape, comm, &zn)?;
    let loss = ops::ntxent::ntxent(&mut tape, &zg, negatives, tau)?;
    let accuracy = ops::ntxent::ntxent_accuracy(zg.value(), negatives)?;
    let loss_v = loss.value().item()?;
    drop(forward);
    let out = StepOutput {
        loss: loss_v,
        accuracy,
    };
    let Some(buckets) = buckets else {
        tape.backward(&loss, store)?;
        all_reduce_grads(comm.as_ref(), store)?;
        return Ok((out, Vec::new()));
    };
    let seed = ops::elementwise::full_like(loss.value(), 1.0)?;
    let mut reduce = BucketedReduce::new(comm.as_ref(), buckets);
    tape.backward_with(&[(&loss, seed)], store, &mut |id, s| reduce.on_final(id, s))?;
    Ok((out, reduce.finish(store)?))
}

/// Replaces every trainable parameter's gradient by its sum over the ranks (nothing to do in
/// a world of one).
pub fn all_reduce_grads(comm: &dyn Communicator, store: &mut ParamStore) -> Result<()> {
    if comm.world_size() == 1 {
        return Ok(());
    }
    let trainable = store.ids().filter(|&id| store.is_trainable(id));
    let (ids, grads) = with_grads(store, trainable);
    let sums = comm.all_reduce_sum(&grads)?;
    store.zero_grads();
    for (id, g) in ids.into_iter().zip(sums) {
        store.accumulate_grad(id, &g)?;
    }
    Ok(())
}
