//! Data parallelism inside one trainer process: W ranks, one thread each (each on its own GPU
//! with the CUDA backend, rank r on cuda:r). Rank 0 is the trainer's own store and optimizer;
//! ranks 1..W hold replicas of both, copied from rank 0 when the run starts or resumes.
//!
//! One loader builds the whole batch, as without data parallelism; rank r takes a contiguous
//! share of its images (both views of each), so the shards are disjoint and their union is the
//! single-process batch. Each step runs the ranks' [`ContrastiveStep`]s together; every rank
//! then takes the same LARS step from the same summed gradient, so the replicas stay equal.

use crate::comm::{concat_rows, narrow_rows, sampler, Comm, ThreadGroup};
use crate::nn::ActivationPolicy;
use crate::optim::Lars;
use crate::params::ParamStore;
use crate::train::contrastive_step::ContrastiveStep;
use crate::train::model::SimClrNet;
use crate::{Device, Error, Result, Tensor};
use std::sync::Mutex;
use std::time::Duration;

/// Rank `rank`'s share of a batch [2B, …] of B view-a rows then B view-b rows: images
/// [start, start + n) of both views, with the B images dealt out as evenly as possible.
pub fn shard(views: &Tensor, rank: usize, world: usize) -> Result<Tensor> {
    let rows = views.shape().first().copied().unwrap_or(0);
    let b = rows / 2;
    if rows % 2 != 0 {
        return Err(Error::Config(format!(
            "data parallelism: {rows} rows are not two views of each image"
        )));
    }
    let (start, n) = sampler::share(b, rank, world)?;
    concat_rows(&[
        narrow_rows(views, start, n)?,
        narrow_rows(views, b + start, n)?,
    ])
}

/// The ranks 1..W of a run, and how they talk.
pub struct ThreadReplicas {
    ranks: Vec<(ParamStore, Lars)>,
    /// One communicator per rank that persists across steps (NCCL); threads make a fresh
    /// group every step, so a failing rank ends that step's group instead of hanging it.
    comms: Option<Vec<Comm>>,
}

impl ThreadReplicas {
    /// How long a GPU rank waits for the others in a collective unless told
    /// ([`ThreadReplicas::with_timeout`]): the default of `--dist-timeout-s`.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

    /// Replicas of `store` and `opt` for ranks 1..world; `fresh` builds an empty store and
    /// optimizer of the same model (same parameter names and order). On a GPU, rank r's
    /// replica moves to cuda:r and the ranks talk through NCCL.
    pub fn new(
        world: usize,
        store: &ParamStore,
        opt: &Lars,
        fresh: impl Fn() -> Result<(ParamStore, Lars)>,
    ) -> Result<Self> {
        Self::with_timeout(world, store, opt, fresh, Self::DEFAULT_TIMEOUT)
    }

    /// As [`ThreadReplicas::new`], GPU ranks failing a collective that has not completed
    /// within `timeout` (`--dist-timeout-s`) instead of waiting for ever.
    pub fn with_timeout(
        world: usize,
        store: &ParamStore,
        opt: &Lars,
        fresh: impl Fn() -> Result<(ParamStore, Lars)>,
        timeout: Duration,
    ) -> Result<Self> {
        if world < 2 {
            return Err(Error::Config(format!(
                "data parallelism needs at least 2 ranks, got {world}"
            )));
        }
        let device = store
            .ids()
            .find_map(|id| store.value(id).ok().map(|t| t.device()))
            .unwrap_or(Device::Cpu);
        let state: std::collections::HashMap<String, Tensor> =
            opt.state(store).into_iter().collect();
        let mut ranks = Vec::with_capacity(world - 1);
        for r in 1..world {
            let (mut s, mut o) = fresh()?;
            let dev = match device {
                Device::Cpu => Device::Cpu,
                Device::Cuda(_) => Device::Cuda(r),
            };
            for id in store.ids() {
                if s.name(id) != store.name(id) {
                    return Err(Error::Config(format!(
                        "replica of a different model: parameter {} is {}",
                        store.name(id),
                        s.name(id)
                    )));
                }
                s.set_value(id, store.value(id)?.to_device(dev)?)?;
            }
            o.load_state(&s, &state)?;
            ranks.push((s, o));
        }
        let comms = match device {
            Device::Cpu => None,
            Device::Cuda(0) => Some(nccl_comms(world, timeout)?),
            Device::Cuda(d) => {
                return Err(Error::Config(format!(
                    "data parallelism on GPUs puts rank r on cuda:r, so rank 0 must be on cuda:0, not cuda:{d}"
                )))
            }
        };
        Ok(ThreadReplicas { ranks, comms })
    }

    pub fn world_size(&self) -> usize {
        self.ranks.len() + 1
    }

    /// One data-parallel step over the whole batch `views` ([2B, …]) with rank 0 on `store`;
    /// ranks 1..W also take their LARS step at `lr` (rank 0's is the caller's, as without
    /// data parallelism). Returns the global batch's loss and contrastive accuracy.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        net: &SimClrNet,
        store: &mut ParamStore,
        views: &Tensor,
        tau: f64,
        negatives: Option<&Tensor>,
        lr: f64,
        policy: ActivationPolicy,
    ) -> Result<(f64, f64)> {
        let world = self.world_size();
        let slots: Vec<Mutex<(&mut ParamStore, Option<&mut Lars>)>> =
            std::iter::once((store, None))
                .chain(self.ranks.iter_mut().map(|(s, o)| (s, Some(o))))
                .map(Mutex::new)
                .collect();
        let rank_step = |comm: Comm| -> Result<(f64, f64)> {
            let r = comm.rank();
            let mut slot = slots[r]
                .lock()
                .map_err(|_| Error::device("data parallel", "a rank's slot is poisoned"))?;
            let (store, opt) = &mut *slot;
            let dev = store
                .ids()
                .find_map(|id| store.value(id).ok().map(|t| t.device()))
                .unwrap_or(Device::Cpu);
            let x = shard(views, r, world)?.to_device(dev)?;
            let q = negatives.map(|q| q.to_device(dev)).transpose()?;
            let step = ContrastiveStep::new(tau, policy).queue(q.as_ref());
            let out = step.comm(Some(&comm)).run(net, store, &x)?.read()?;
            if let Some(opt) = opt {
                opt.step(store, lr)?;
            }
            Ok(out)
        };
        let outs = match &self.comms {
            None => ThreadGroup::run(world, rank_step)?,
            Some(comms) => std::thread::scope(|s| {
                let handles: Vec<_> = comms
                    .iter()
                    .map(|c| {
                        let c = c.clone();
                        let f = &rank_step;
                        s.spawn(move || f(c))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(Error::device("data parallel", "a rank panicked"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })?,
        };
        Ok(outs[0])
    }
}

#[cfg(feature = "cuda")]
fn nccl_comms(world: usize, timeout: Duration) -> Result<Vec<Comm>> {
    let ordinals: Vec<usize> = (0..world).collect();
    Ok(crate::comm::Nccl::group_with_timeout(&ordinals, timeout)?
        .into_iter()
        .map(|c| std::sync::Arc::new(c) as Comm)
        .collect())
}

#[cfg(not(feature = "cuda"))]
fn nccl_comms(_world: usize, _timeout: Duration) -> Result<Vec<Comm>> {
    Err(Error::device(
        "data parallel",
        crate::cuda_unavailable_reason(),
    ))
}
