//! One contrastive forward + backward (no update): the whole batch on one tape, or in
//! micro-batches with gradient caching ([`super::grad_cache`]). Shared by the trainer's bench
//! and memory planner so that what is measured is what is trained.

use super::grad_cache;
use super::model::SimClrNet;
use super::step_stats::StepStats;
use crate::nn::ActivationPolicy;
use crate::ops;
use crate::params::ParamStore;
use crate::profile::{self, Phase};
use crate::{Result, Tensor};

/// Leaves the step's gradients accumulated in `store`; returns the loss and contrastive
/// accuracy where they were computed (on a GPU the step enqueues its work and returns without
/// waiting for the device; [`StepStats::read`] reads them).
/// `views` is [2B, H, W, C]: the B first views, then the B second views.
pub fn contrastive_step(
    net: &SimClrNet,
    store: &mut ParamStore,
    views: &Tensor,
    micro: Option<usize>,
    tau: f64,
    queue: Option<&Tensor>,
    policy: ActivationPolicy,
) -> Result<StepStats> {
    if let Some(m) = micro {
        return grad_cache::contrastive_step_cached(
            None, net, store, views, m, tau, queue, true, policy,
        );
    }
    let mut tape = policy.tape();
    let forward = profile::phase(Phase::Forward);
    let x = tape.constant(views.clone());
    let z = net.project(&mut policy.ctx(&mut tape, store, true), &x)?;
    let zn = ops::l2_normalize(&mut tape, &z)?;
    let loss = ops::ntxent::ntxent(&mut tape, &zn, queue, tau)?;
    let accuracy = ops::ntxent::ntxent_accuracy_deferred(zn.value(), queue)?;
    drop(forward);
    let stats = StepStats {
        loss: loss.value().clone(),
        accuracy,
    };
    tape.backward(&loss, store)?;
    Ok(stats)
}
