//! The epoch loop of every resumable stage (pretraining, fine-tuning, the supervised baseline,
//! distillation): which epochs this run trains (from the resumed position, at most
//! `--stop-after-epochs` of them), the batches of a resumed epoch already trained, the hook
//! for planted rank faults before each step, the stop on a signal after each step (its state
//! saved), and the state saved after each epoch (rank 0 writes). A stage keeps only its step
//! and what it reports. The loop does not hold the stage's [`Env`] (the step logs through it),
//! so the calls that act for the job take it.

use super::common::Env;
use super::state::Position;
use super::{dist_run, signals};
use crate::optim::Lars;
use crate::params::ParamStore;
use crate::{Result, Tensor};
use std::ops::Range;
use std::path::PathBuf;

pub struct EpochLoop {
    stage: &'static str,
    epochs: usize,
    per_epoch: usize,
    stop_after_epochs: Option<usize>,
    state_path: PathBuf,
    armed: signals::Armed,
}

impl EpochLoop {
    /// Arms the signal handlers: from here a SIGINT or SIGTERM stops the stage after the step
    /// in flight, with its state saved at `state_path`.
    pub fn new(
        env: &Env,
        stage: &'static str,
        epochs: usize,
        per_epoch: usize,
        state_path: PathBuf,
    ) -> Self {
        EpochLoop {
            stage,
            epochs,
            per_epoch,
            stop_after_epochs: env.stop_after_epochs,
            state_path,
            armed: signals::arm(),
        }
    }

    /// The epochs this run trains: from the resumed position on, at most `--stop-after-epochs`
    /// of them.
    pub fn epochs(&self, pos: &Position) -> Range<usize> {
        let start = pos.epochs_done;
        let end = match self.stop_after_epochs {
            Some(n) => start.saturating_add(n).min(self.epochs),
            None => self.epochs,
        };
        start..end.max(start)
    }

    /// The batches of `epoch` a run resumed mid-epoch already trained (they are skipped).
    pub fn skip(&self, pos: &Position, epoch: usize) -> usize {
        signals::batches_done(pos, epoch, self.per_epoch)
    }

    /// Before each step: the test hook that makes one rank of a job fail at a given step.
    pub fn before_step(&self, env: &Env, pos: &Position) {
        dist_run::planted_fault(env, pos.step);
    }

    /// After each step: if a signal asked to stop, saves the state (with the stage's `extra`
    /// tensors) and ends the process as the signal asked.
    pub fn after_step(
        &self,
        env: &Env,
        store: &ParamStore,
        opt: &Lars,
        pos: &Position,
        extra: impl FnOnce() -> Result<Vec<(String, Tensor)>>,
    ) -> Result<()> {
        let path = &self.state_path;
        dist_run::stop_if_requested(env, self.stage, path, store, opt, pos, extra)
    }

    /// After each epoch: marks `epoch` done and saves the state.
    pub fn end_epoch(
        &self,
        env: &Env,
        epoch: usize,
        store: &ParamStore,
        opt: &Lars,
        pos: &mut Position,
        extra: Vec<(String, Tensor)>,
    ) -> Result<()> {
        pos.epochs_done = epoch + 1;
        dist_run::save_state(env, &self.state_path, store, opt, extra, pos)
    }

    /// Whether every epoch of the stage is done.
    pub fn complete(&self, pos: &Position) -> bool {
        pos.epochs_done == self.epochs
    }

    /// Disarms the signal handlers; a signal that came after the last step's check ends the
    /// process now (its state is saved).
    pub fn finish(self) {
        drop(self.armed);
    }
}
