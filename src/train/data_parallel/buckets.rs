//! Gradient all-reduce in buckets while backward still runs (as PyTorch DDP does). The
//! trainable parameters are grouped, in reverse order of registration (roughly the order in
//! which backward finishes them), into buckets of at least `--bucket-mb` MiB of gradients; the
//! tape reports each parameter as soon as its gradient is complete
//! ([`crate::autograd::Tape::backward_with`]), and once every parameter of a bucket is, its
//! all-reduce is started ([`Communicator::all_reduce_sum_start`]: enqueued on the
//! communicator's side stream for NCCL, after the device's stream by an event, a non-blocking
//! `MPI_Iallreduce` for MPI). The optimizer waits only at the
//! end ([`BucketedReduce::finish`]).
//!
//! Every element is summed by the same collective over the same ranks as by
//! [`super::all_reduce_grads`] after backward, so the sums are the same (bit-exact wherever the
//! collective's per-element order does not depend on the message size: the thread group always,
//! MPI and NCCL on two ranks). Every rank runs the same graph, so the buckets start in the same
//! order everywhere, as collectives must.

use crate::comm::{Communicator, PendingSum};
use crate::params::{ParamId, ParamStore};
use crate::{Error, Result, Tensor};
use std::collections::HashMap;

/// `--bucket-mb`'s default, as PyTorch DDP's `bucket_cap_mb`.
pub const DEFAULT_BUCKET_MB: f64 = 25.0;

/// What happened during a bucketed step, in order (the proof of overlap is this order, an
/// exact count, never a timing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Bucket i's all-reduce was started.
    Started(usize),
    /// Backward returned.
    BackwardDone,
    /// Bucket i's sums were waited for and written back.
    Finished(usize),
}

/// The trainable parameters of a store grouped into buckets.
#[derive(Clone, Debug)]
pub struct Buckets {
    members: Vec<Vec<ParamId>>,
    of: HashMap<ParamId, usize>,
}

impl Buckets {
    /// Buckets of at least `bucket_mb` MiB (the last may hold less), in reverse registration
    /// order. `bucket_mb` must be positive and finite.
    pub fn new(store: &ParamStore, bucket_mb: f64) -> Result<Buckets> {
        if !(bucket_mb.is_finite() && bucket_mb > 0.0) {
            return Err(Error::Config(format!(
                "--bucket-mb must be a positive number of MiB, got {bucket_mb}"
            )));
        }
        let cap = bucket_mb * (1u64 << 20) as f64;
        let ids: Vec<ParamId> = store.ids().filter(|&id| store.is_trainable(id)).collect();
        let mut members: Vec<Vec<ParamId>> = Vec::new();
        let mut bytes = 0.0;
        for id in ids.into_iter().rev() {
            if members.is_empty() || bytes >= cap {
                members.push(Vec::new());
                bytes = 0.0;
            }
            let e = store.entry(id);
            bytes += (e.shape.iter().product::<usize>() * store.dtype().size_in_bytes()) as f64;
            members.last_mut().expect("a bucket").push(id);
        }
        let of = members
            .iter()
            .enumerate()
            .flat_map(|(b, ids)| ids.iter().map(move |&id| (id, b)))
            .collect();
        Ok(Buckets { members, of })
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The parameters of bucket `b`.
    pub fn members(&self, b: usize) -> &[ParamId] {
        &self.members[b]
    }
}

/// The parameters of `ids` that have a gradient, and their gradients.
pub(super) fn with_grads(
    store: &ParamStore,
    ids: impl Iterator<Item = ParamId>,
) -> (Vec<ParamId>, Vec<Tensor>) {
    ids.filter_map(|id| store.grad(id).map(|g| (id, g.clone())))
        .unzip()
}

/// One backward's bucketed all-reduce: feed it every parameter the tape finishes
/// ([`BucketedReduce::on_final`]), then [`BucketedReduce::finish`].
pub struct BucketedReduce<'a> {
    comm: &'a dyn Communicator,
    buckets: &'a Buckets,
    left: Vec<usize>,
    /// Started buckets in start order: (bucket, parameters with a gradient, the pending sums).
    started: Vec<(usize, Vec<ParamId>, Box<dyn PendingSum + 'a>)>,
    events: Vec<Event>,
}

impl<'a> BucketedReduce<'a> {
    pub fn new(comm: &'a dyn Communicator, buckets: &'a Buckets) -> Self {
        BucketedReduce {
            comm,
            buckets,
            left: buckets.members.iter().map(|m| m.len()).collect(),
            started: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Parameter `id`'s gradient in `store` is complete; starts its bucket's all-reduce when it
    /// was the bucket's last.
    pub fn on_final(&mut self, id: ParamId, store: &ParamStore) -> Result<()> {
        let Some(&b) = self.buckets.of.get(&id) else {
            return Ok(());
        };
        self.left[b] -= 1;
        if self.left[b] == 0 {
            self.start(b, store)?;
        }
        Ok(())
    }

    fn start(&mut self, b: usize, store: &ParamStore) -> Result<()> {
        self.left[b] = usize::MAX;
        let (ids, grads) = with_grads(store, self.buckets.members[b].iter().copied());
        let pending = self.comm.all_reduce_sum_start(grads)?;
        self.events.push(Event::Started(b));
        self.started.push((b, ids, pending));
        Ok(())
    }

    /// After backward: starts the buckets backward never completed (parameters the graph did not
    /// reach), in bucket order, waits for every bucket in start order and writes the sums over
    /// the gradients. Returns the events in order.
    pub fn finish(mut self, store: &mut ParamStore) -> Result<Vec<Event>> {
        self.events.push(Event::BackwardDone);
        for b in 0..self.buckets.len() {
            if self.left[b] != usize::MAX {
                self.start(b, store)?;
            }
        }
        let mut sums: Vec<(ParamId, Tensor)> = Vec::new();
        for (b, ids, pending) in self.started.drain(..) {
            sums.extend(ids.into_iter().zip(pending.wait()?));
            self.events.push(Event::Finished(b));
        }
        for (id, g) in sums {
            store.set_grad(id, g)?;
        }
        Ok(self.events)
    }
}
