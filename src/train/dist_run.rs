//! What a stage does differently as one rank of a multi-process job (mpirun, srun, torchrun;
//! see [`crate::comm::launch`]): each rank loads only its share of every global batch
//! ([`ShardedLoader`]), starts from rank 0's weights ([`start`]), and only rank 0 writes files
//! (the run directory of the others is a [`super::run_dir::RunDir::follower`]).
//!
//! `--batch-size` stays the global batch. Every rank resumes from the same state file, read
//! from `--out` (on several machines it must be on a filesystem they share); [`start`] checks
//! that every rank found the same position before the first step.

use super::common::Env;
use super::config::Config;
use super::state::Position;
use crate::autograd::{Tape, Var};
use crate::comm::launch::Launch;
use crate::comm::{self, Comm};
use crate::data::{AugmentConfig, Batches, Dataset, Loader, LoaderConfig, RawBatches, Transform};
use crate::nn::{ActivationPolicy, Ctx};
use crate::params::ParamStore;
use crate::{DType, Device, Error, Result, Tensor};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Refuses settings a multi-process job cannot run.
pub fn check(cfg: &Config, launch: &Launch) -> Result<()> {
    let t = cfg.dist_timeout_s;
    if !(t.is_finite() && t > 0.0 && t <= super::config_checks::MAX_SECONDS) {
        return Err(Error::Config(format!(
            "--dist-timeout-s must be a positive number of seconds, at most 1e9, got {t:?}"
        )));
    }
    if !(cfg.bucket_mb.is_finite() && cfg.bucket_mb > 0.0) {
        return Err(Error::Config(format!(
            "--bucket-mb must be a positive number of MiB, got {}",
            cfg.bucket_mb
        )));
    }
    if launch.world == 1 {
        return Ok(());
    }
    if cfg.pretrain.world_size > 1 {
        return Err(Error::Config(format!(
            "--world-size {} runs ranks as threads of one process, and {} already started {} \
             processes: use one or the other",
            cfg.pretrain.world_size,
            launch.launcher.name(),
            launch.world
        )));
    }
    Ok(())
}

/// This rank's communicator (None in a world of one).
pub fn join(cfg: &Config, launch: &Launch, device: Device) -> Result<Option<Comm>> {
    comm::process::join(launch, device, Duration::from_secs_f64(cfg.dist_timeout_s))
}

/// The summary's record of the job: world size and the launcher that was detected.
pub fn summary(env: &Env) -> serde_json::Value {
    json!({ "world_size": env.launch.world, "launcher": env.launch.launcher.name() })
}

/// A training loader that, in a multi-process job, builds only this rank's share of every
/// global batch ([`comm::sampler`]).
pub struct ShardedLoader {
    global: Loader,
    dataset: Arc<dyn Dataset>,
    transform: Arc<dyn Transform>,
    rank: usize,
    world: usize,
}

impl ShardedLoader {
    /// `cfg` describes the global batches (shuffled, full batches only).
    pub fn new(
        env: &Env,
        dataset: Arc<dyn Dataset>,
        transform: Arc<dyn Transform>,
        cfg: LoaderConfig,
    ) -> Result<Self> {
        let (rank, world) = (env.launch.rank, env.launch.world);
        if world > 1 {
            if !cfg.drop_last {
                return Err(Error::Config(
                    "a multi-process loader needs full batches (drop_last)".into(),
                ));
            }
            comm::sampler::share(cfg.batch_size, rank, world)?;
        }
        Ok(ShardedLoader {
            global: Loader::new(dataset.clone(), transform.clone(), cfg)?,
            dataset,
            transform,
            rank,
            world,
        })
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.global.batches_per_epoch()
    }

    /// This rank's batches of `epoch`: its share of each global batch, in order.
    pub fn epoch(&self, epoch: u64) -> Result<Batches> {
        self.with_local(epoch, |l| l.epoch(epoch))
    }

    /// As [`Self::epoch`], as u8 sources and view parameters (`--augment-on gpu`).
    pub fn raw_epoch(
        &self,
        epoch: u64,
        aug: &AugmentConfig,
        decode: crate::data::SourceDecode,
    ) -> Result<RawBatches> {
        self.with_local(epoch, |l| l.raw_epoch(epoch, aug, decode))
    }

    /// `f` of the loader of this rank's share of `epoch`.
    fn with_local<T>(&self, epoch: u64, f: impl FnOnce(&Loader) -> T) -> Result<T> {
        if self.world == 1 {
            return Ok(f(&self.global));
        }
        let cfg = self.global.config();
        let order = self.global.order(epoch);
        let mine = comm::sampler::rank_order(&order, cfg.batch_size, self.rank, self.world)?;
        let (_, n) = comm::sampler::share(cfg.batch_size, self.rank, self.world)?;
        let local = LoaderConfig {
            batch_size: n,
            shuffle: false,
            indices: Some(mine),
            ..cfg.clone()
        };
        Ok(f(&Loader::new(
            self.dataset.clone(),
            self.transform.clone(),
            local,
        )?))
    }
}

/// Before the first step: every rank must resume from the same position, and takes rank 0's
/// values of every tensor of `stores` (parameters and buffers), so the replicas start equal.
pub fn start(env: &Env, stores: &mut [&mut ParamStore], pos: &Position) -> Result<()> {
    let Some(comm) = &env.comm else {
        return Ok(());
    };
    let mine = Tensor::from_f64(
        &[pos.step as f64, pos.epochs_done as f64],
        &[1, 2],
        DType::F64,
    )?;
    let all = comm.all_gather(&mine)?.to_vec_f64()?;
    for (r, p) in all.chunks(2).enumerate() {
        if p != &all[..2] {
            return Err(Error::Config(format!(
                "rank {r} would resume at step {} (epoch {}) and rank 0 at step {} (epoch {}): \
                 every rank must see rank 0's state in --out (a filesystem shared by all ranks)",
                p[0], p[1], all[0], all[1]
            )));
        }
    }
    for store in stores.iter_mut() {
        let ids: Vec<_> = store.ids().collect();
        for id in ids {
            let v = comm.broadcast(store.value(id)?)?;
            store.set_value(id, v)?;
        }
    }
    Ok(())
}

/// Testing aid for the fault tests: `SIMCLR_TEST_FAULT=<rank>:<step>:<kill|exit|hang>` makes
/// that rank die of SIGKILL, exit with status 86, or stop answering before that step.
pub fn planted_fault(env: &Env, step: usize) {
    if env.comm.is_none() {
        return;
    }
    let Ok(spec) = std::env::var("SIMCLR_TEST_FAULT") else {
        return;
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (Some(r), Some(s), Some(kind)) = (parts.first(), parts.get(1), parts.get(2)) else {
        return;
    };
    if r.parse() != Ok(env.launch.rank) || s.parse() != Ok(step) {
        return;
    }
    eprintln!(
        "rank {}: planted fault before step {step}: {kind}",
        env.launch.rank
    );
    match *kind {
        "hang" => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        "kill" => {
            // SAFETY: signals this very process.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            std::process::exit(86)
        }
        _ => std::process::exit(86),
    }
}

/// A training context on `tape`, with synchronised batch norm in a multi-process job.
pub fn ctx<'a>(
    env: &Env,
    policy: ActivationPolicy,
    tape: &'a mut Tape,
    store: &'a mut ParamStore,
) -> Ctx<'a> {
    let ctx = policy.ctx(tape, store, true);
    match &env.comm {
        Some(c) => ctx.with_comm(c.clone()),
        None => ctx,
    }
}

/// This rank's part of a global mean loss: its own mean over `rows` rows weighted by its share
/// of the `global` rows, so that the ranks' parts add up to the mean over the global batch and
/// their summed gradients are its gradient (see [`crate::comm`]). Unchanged in a world of one.
pub fn rank_loss(
    env: &Env,
    tape: &mut Tape,
    loss: &Var,
    rows: usize,
    global: usize,
) -> Result<Var> {
    match env.comm {
        Some(_) => crate::ops::elementwise::scale(tape, loss, rows as f64 / global as f64),
        None => Ok(loss.clone()),
    }
}

/// The global batch's loss from this rank's part (the same on every rank).
pub fn global_loss(env: &Env, part: f64) -> Result<f64> {
    match &env.comm {
        Some(c) => c.all_reduce_sum(&[Tensor::from_f64(&[part], &[1], DType::F64)?])?[0]
            .to_vec_f64()
            .map(|v| v[0]),
        None => Ok(part),
    }
}

/// After backward: every trainable gradient summed over the ranks (nothing in a world of one).
pub fn reduce_grads(env: &Env, store: &mut ParamStore) -> Result<()> {
    match &env.comm {
        Some(c) => super::data_parallel::all_reduce_grads(c.as_ref(), store),
        None => Ok(()),
    }
}

/// [`super::state::save`] on rank 0 only.
pub fn save_state(
    env: &Env,
    path: &std::path::Path,
    store: &ParamStore,
    opt: &crate::optim::Lars,
    extra: Vec<(String, Tensor)>,
    pos: &Position,
) -> Result<()> {
    match env.run.is_writer() {
        true => super::state::save(path, store, opt, extra, pos),
        false => Ok(()),
    }
}

/// [`super::signals::stop_if_requested`] on rank 0 only: the others do not write a state, and
/// end when the launcher ends the job.
pub fn stop_if_requested(
    env: &Env,
    stage: &str,
    path: &std::path::Path,
    store: &ParamStore,
    opt: &crate::optim::Lars,
    pos: &Position,
    extra: impl FnOnce() -> Result<Vec<(String, Tensor)>>,
) -> Result<()> {
    match env.run.is_writer() {
        true => super::signals::stop_if_requested(stage, path, store, opt, pos, extra),
        false => Ok(()),
    }
}

/// The rows of `indices` (default: 0..n) this rank handles when a whole split is processed
/// once (features, evaluation): a contiguous share, so that gathering the ranks' results in
/// rank order gives the split's order.
pub fn split_share(env: &Env, indices: Option<Vec<usize>>, n: usize) -> Result<Option<Vec<usize>>> {
    if env.comm.is_none() {
        return Ok(indices);
    }
    let all = indices.unwrap_or_else(|| (0..n).collect());
    let (start, len) = comm::sampler::share(all.len(), env.launch.rank, env.launch.world)?;
    Ok(Some(all[start..start + len].to_vec()))
}

/// Every rank's rows of `[rows, dim]` values (and their labels), in rank order.
pub fn gather_rows(
    env: &Env,
    values: Vec<f32>,
    labels: Vec<usize>,
    dim: usize,
) -> Result<(Vec<f32>, Vec<usize>)> {
    let Some(c) = &env.comm else {
        return Ok((values, labels));
    };
    let n = labels.len();
    let v = c
        .all_gather(&Tensor::from_vec(values, &[n, dim])?)?
        .to_vec_f32()?;
    let l: Vec<f64> = labels.iter().map(|&y| y as f64).collect();
    let l = c.all_gather(&Tensor::from_f64(&l, &[n, 1], DType::F64)?)?;
    Ok((v, l.to_vec_f64()?.into_iter().map(|y| y as usize).collect()))
}
