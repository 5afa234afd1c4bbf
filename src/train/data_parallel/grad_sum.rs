//! Summing a rank's parameter gradients over the ranks after backward (the bucketed sums
//! during backward are [`super::buckets`]).

use super::buckets::with_grads;
use crate::comm::Communicator;
use crate::params::ParamStore;
use crate::Result;

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

/// After a micro-batched step of this rank ([`crate::train::grad_cache`]): the gradients
/// summed over the ranks, and every rank takes rank 0's BN running statistics (each rank folded
/// only its own micro-batches into them).
pub fn sum_after_micro_step(comm: &dyn Communicator, store: &mut ParamStore) -> Result<()> {
    all_reduce_grads(comm, store)?;
    let buffers: Vec<_> = store.ids().filter(|&id| !store.is_trainable(id)).collect();
    for id in buffers {
        let v = comm.broadcast(store.value(id)?)?;
        store.set_value(id, v)?;
    }
    Ok(())
}
