//! SIGINT and SIGTERM end training cleanly: the handler only records the signal; the stage
//! finishes its current step, writes a resumable state (mid-epoch: the data order is a function
//! of seed, epoch and index, so a resume skips the batches already done), says how to resume,
//! and the binary exits 128 + signal (130, 143).

use super::state::{self, Position};
use crate::optim::Lars;
use crate::params::ParamStore;
use crate::{Error, Result, Tensor};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// Whether a training loop is running that will look at `RECEIVED` after its step.
static ARMED: AtomicBool = AtomicBool::new(false);

extern "C" fn record(sig: libc::c_int) {
    // Async-signal-safe only: atomics, signal, raise. Outside a training loop (loading,
    // evaluation, `eval`, `info`), or on a second signal, the default action ends the process.
    if ARMED.load(Ordering::SeqCst) && RECEIVED.load(Ordering::SeqCst) == 0 {
        RECEIVED.store(sig, Ordering::SeqCst);
    } else {
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
}

/// While alive, a signal waits for the training loop's next step boundary.
pub struct Armed(());

/// Arms the handlers for a training loop; drop the guard when the loop ends.
pub fn arm() -> Armed {
    ARMED.store(true, Ordering::SeqCst);
    Armed(())
}

impl Drop for Armed {
    fn drop(&mut self) {
        ARMED.store(false, Ordering::SeqCst);
        // A signal after the last step's check: its state is saved, so end as it asked.
        let sig = RECEIVED.swap(0, Ordering::SeqCst);
        if sig != 0 {
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
                libc::raise(sig);
            }
        }
    }
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
    // Taken here, so the loop's guard does not raise it again on the way out.
    RECEIVED.store(0, Ordering::SeqCst);
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
