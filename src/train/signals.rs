//! SIGINT and SIGTERM end training cleanly: the handler only records the signal; the stage
//! finishes its current step, writes a resumable state (mid-epoch: the data order is a function
//! of seed, epoch and index, so a resume skips the batches already done), says how to resume,
//! and the binary exits 128 + signal (130, 143).

use super::state::{self, Position};
use crate::optim::Lars;
use crate::params::ParamStore;
use crate::{Error, Result, Tensor};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(sig: libc::c_int) {
    // Async-signal-safe: one atomic store.
    RECEIVED.store(sig, Ordering::SeqCst);
}

/// Installs the handlers (the binary calls this once; library users keep the defaults).
pub fn install() {
    let handler = record as extern "C" fn(libc::c_int) as libc::sighandler_t;
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// The signal received since start, if any.
pub fn requested() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// After a step: if a signal came, saves the state at this step and returns the error that
/// ends the run. `extra` builds the stage's extra tensors (EMA network, queue).
pub fn stop_if_requested(
    stage: &str,
    path: &Path,
    store: &ParamStore,
    opt: &Lars,
    pos: &Position,
    extra: impl FnOnce() -> Result<Vec<(String, Tensor)>>,
) -> Result<()> {
    let Some(signal) = requested() else {
        return Ok(());
    };
    state::save(path, store, opt, extra()?, pos)?;
    let name = if signal == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    Err(Error::Interrupted {
        signal,
        msg: format!(
            "{stage}: stopped by {name} after step {} (epoch {}); the state is saved in {}. \
             Run the same command with --resume to continue from this step",
            pos.step,
            pos.epochs_done + 1,
            path.display()
        ),
    })
}

/// Batches of `epoch` already done by a state saved mid-epoch (0 after a whole epoch).
pub fn batches_done(pos: &Position, epoch: usize, per_epoch: usize) -> usize {
    pos.step.saturating_sub(epoch.saturating_mul(per_epoch))
}
