//! The one contrastive forward + backward (no update) of every trainer path: one process or
//! one rank of W, the whole batch on one tape or in micro-batches with gradient caching
//! ([`super::grad_cache`]). A world of one and no micro-batching are the trivial cases of the
//! same function, so the trainer, the bench, the memory planner and the data-parallel replicas
//! all run what is measured and tested.
//!
//! As one rank (see [`crate::comm`] for what a data-parallel step computes and why the
//! gradients are summed): the forward runs with synchronised batch norm, the normalised
//! projections of all ranks are gathered so that the loss is the global batch's, and the
//! parameter gradients are summed over the ranks before the step returns.

use super::data_parallel::{all_reduce_grads, sum_after_micro_step, BucketedReduce, Buckets};
use super::data_parallel::{Event, DEFAULT_BUCKET_MB};
use super::grad_cache;
use super::model::SimClrNet;
use super::step_stats::StepStats;
use crate::comm::Comm;
use crate::nn::ActivationPolicy;
use crate::ops;
use crate::ops::gather_views::gather_views;
use crate::params::ParamStore;
use crate::profile::{self, Phase};
use crate::{Result, Tensor};

/// How one rank's parameter gradients are summed over the ranks (unused in a world of one).
#[derive(Clone, Copy)]
pub enum GradSum<'a> {
    /// In buckets of PyTorch DDP's default size, started while backward still runs.
    DefaultBuckets,
    /// In these buckets (`--bucket-mb`), started while backward still runs.
    Buckets(&'a Buckets),
    /// One all-reduce of every gradient after backward.
    AfterBackward,
}

/// What a step needs besides the network, the parameters and the views.
#[derive(Clone, Copy)]
pub struct ContrastiveStep<'a> {
    pub tau: f64,
    pub policy: ActivationPolicy,
    /// Micro-batches of at most this many rows (views), with gradient caching.
    pub micro: Option<usize>,
    /// The memory queue's negatives.
    pub queue: Option<&'a Tensor>,
    /// This rank's communicator; `None` is a world of one.
    pub comm: Option<&'a Comm>,
    pub grad_sum: GradSum<'a>,
}

impl<'a> ContrastiveStep<'a> {
    /// One process, the whole batch on one tape, no queue.
    pub fn new(tau: f64, policy: ActivationPolicy) -> Self {
        ContrastiveStep {
            tau,
            policy,
            micro: None,
            queue: None,
            comm: None,
            grad_sum: GradSum::DefaultBuckets,
        }
    }

    pub fn micro(self, rows: Option<usize>) -> Self {
        ContrastiveStep {
            micro: rows,
            ..self
        }
    }

    pub fn queue(self, queue: Option<&'a Tensor>) -> Self {
        ContrastiveStep { queue, ..self }
    }

    /// As one rank of `comm`'s world (a world of one runs the single-process step).
    pub fn comm(self, comm: Option<&'a Comm>) -> Self {
        ContrastiveStep { comm, ..self }
    }

    pub fn grad_sum(self, grad_sum: GradSum<'a>) -> Self {
        ContrastiveStep { grad_sum, ..self }
    }

    /// Leaves the step's gradients (the global batch's, summed over the ranks) accumulated in
    /// `store` and returns the loss and contrastive accuracy where they were computed (on a
    /// GPU the step enqueues its work and returns without waiting for the device;
    /// [`StepStats::read`] reads them). `views` is [2B, H, W, C]: this process's (or rank's) B
    /// first views, then its B second views.
    pub fn run(
        &self,
        net: &SimClrNet,
        store: &mut ParamStore,
        views: &Tensor,
    ) -> Result<StepStats> {
        Ok(self.run_traced(net, store, views)?.0)
    }

    /// [`ContrastiveStep::run`], also returning the order of the gradient buckets' events
    /// (empty without buckets or in a world of one): the proof of overlap.
    pub fn run_traced(
        &self,
        net: &SimClrNet,
        store: &mut ParamStore,
        views: &Tensor,
    ) -> Result<(StepStats, Vec<Event>)> {
        let ranks = self.comm.filter(|c| c.world_size() > 1);
        if let Some(m) = self.micro {
            let c = ranks.map(|c| c.as_ref());
            let (tau, queue, policy) = (self.tau, self.queue, self.policy);
            let stats = grad_cache::contrastive_step_cached(
                c, net, store, views, m, tau, queue, true, policy,
            )?;
            if let Some(comm) = ranks {
                sum_after_micro_step(comm.as_ref(), store)?;
            }
            return Ok((stats, Vec::new()));
        }
        let mut tape = self.policy.tape();
        let forward = profile::phase(Phase::Forward);
        let x = tape.constant(views.clone());
        let mut ctx = self.policy.ctx(&mut tape, store, true);
        if let Some(comm) = ranks {
            ctx = ctx.with_comm(comm.clone());
        }
        let z = net.project(&mut ctx, &x)?;
        let zn = ops::l2_normalize(&mut tape, &z)?;
        let zg = match ranks {
            Some(comm) => gather_views(&mut tape, comm, &zn)?,
            None => zn,
        };
        let loss = ops::ntxent::ntxent(&mut tape, &zg, self.queue, self.tau)?;
        let accuracy = ops::ntxent::ntxent_accuracy_deferred(zg.value(), self.queue)?;
        drop(forward);
        let stats = StepStats {
            loss: loss.value().clone(),
            accuracy,
        };
        let Some(comm) = ranks else {
            tape.backward(&loss, store)?;
            return Ok((stats, Vec::new()));
        };
        let default_buckets;
        let buckets = match self.grad_sum {
            GradSum::AfterBackward => {
                tape.backward(&loss, store)?;
                all_reduce_grads(comm.as_ref(), store)?;
                return Ok((stats, Vec::new()));
            }
            GradSum::Buckets(b) => b,
            GradSum::DefaultBuckets => {
                default_buckets = Buckets::new(store, DEFAULT_BUCKET_MB)?;
                &default_buckets
            }
        };
        let seed = ops::elementwise::full_like(loss.value(), 1.0)?;
        let mut reduce = BucketedReduce::new(comm.as_ref(), buckets);
        tape.backward_with(&[(&loss, seed)], store, &mut |id, s| reduce.on_final(id, s))?;
        Ok((stats, reduce.finish(store)?))
    }
}
