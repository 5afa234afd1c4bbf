//! The watchdog of one NCCL communicator: faults that show only after a collective was
//! enqueued. On a GPU, NCCL takes a collective and returns; its kernel then waits on the device
//! for the peers, and a peer that died or hangs leaves it waiting forever, and with it the next
//! host wait (a read of the loss). The caller marks each collective with an event on the
//! stream ([`Watcher::mark`]); this thread asks every tick whether the device passed the oldest
//! mark (cuEventQuery: no host wait, no stream synchronisation, so the step counts stay as
//! they are) and, while one is outstanding, for NCCL's asynchronous error. A mark older than the
//! timeout, or an error, ends the communicator ([`Watched::fail`]: ncclCommAbort, which ends
//! NCCL's kernels and so frees the waiting host) and the next call returns the error.
//!
//! The age counts from the enqueue, so a collective queued behind a long backlog of compute
//! also counts that compute: the timeout (`--dist-timeout-s`, 300 s by default) must exceed
//! what the host runs ahead of the device, which one step never approaches.
//! On the emulated device a collective has completed when its call returns, so the marks are
//! passed at once and faults are found by the caller's own poll (`Nccl::settle`); a test makes
//! a mark stay unpassed with `crate::cuda::emu::event::hold_events`.

use crate::cuda::driver::cu::CUstream;
use crate::cuda::driver::event::{self, CUevent};
use crate::{Error, Result};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the watchdog watches.
pub(super) trait Watched: Send + 'static {
    /// NCCL's asynchronous error, if the communicator has one.
    fn async_error(&self) -> Option<String>;
    /// Ends the communicator: collective `what` did not complete (`failure`: NCCL's error; none:
    /// the timeout passed).
    fn fail(&self, what: &str, failure: Option<&str>);
}

struct Mark {
    event: CUevent,
    what: String,
    since: Instant,
}

#[derive(Default)]
struct State {
    marks: VecDeque<Mark>,
    /// Events whose marks were passed, for reuse.
    spare: Vec<CUevent>,
    stop: bool,
    tripped: bool,
}

// Events are plain handles the driver lets any thread use.
unsafe impl Send for State {}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(super) struct Watcher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts the watchdog of a communicator on GPU `ordinal`.
    pub fn spawn(ordinal: usize, timeout: Duration, target: impl Watched) -> Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("nccl-watch-{ordinal}"))
            .spawn(move || run(&s, ordinal, timeout, &target))
            .map_err(|e| Error::Cuda(format!("starting the NCCL watchdog thread: {e}")))?;
        Ok(Watcher {
            shared,
            thread: Some(thread),
        })
    }

    /// Marks the collective `what` just enqueued on `stream`. Skipped while the stream is
    /// captured into a CUDA graph (the event would become a node of the graph).
    pub fn mark(&self, stream: CUstream, what: impl FnOnce() -> String) -> Result<()> {
        if crate::cuda::driver::graph::capturing() {
            return Ok(());
        }
        let mut st = self.shared.lock();
        if st.tripped {
            return Ok(());
        }
        let event = match st.spare.pop() {
            Some(e) => e,
            None => event::create().map_err(|e| Error::Cuda(format!("cuEventCreate: {e:?}")))?,
        };
        if let Err(e) = unsafe { event::record(event, stream) } {
            st.spare.push(event);
            return Err(Error::Cuda(format!("cuEventRecord: {e:?}")));
        }
        st.marks.push_back(Mark {
            event,
            what: what(),
            since: Instant::now(),
        });
        Ok(())
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut st = self.shared.lock();
        let marks: Vec<CUevent> = st.marks.drain(..).map(|m| m.event).collect();
        for e in marks.into_iter().chain(st.spare.drain(..)) {
            // SAFETY: the thread that could query them has ended.
            let _ = unsafe { event::destroy(e) };
        }
    }
}

fn run(shared: &Shared, ordinal: usize, timeout: Duration, target: &impl Watched) {
    // cuEventQuery wants the device's context current on this thread.
    if crate::cuda::gpu(ordinal).is_err() {
        return;
    }
    let tick = (timeout / 20).clamp(Duration::from_millis(10), Duration::from_millis(200));
    loop {
        let oldest = {
            let mut st = shared.lock();
            st = shared
                .wake
                .wait_timeout(st, tick)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            if st.stop {
                return;
            }
            if st.tripped {
                continue;
            }
            while let Some(m) = st.marks.front() {
                match unsafe { event::query(m.event) } {
                    Ok(true) => {
                        if let Some(m) = st.marks.pop_front() {
                            st.spare.push(m.event);
                        }
                    }
                    Ok(false) => break,
                    // A broken context: the next call on the stream reports it.
                    Err(_) => {
                        st.tripped = true;
                        break;
                    }
                }
            }
            match st.marks.front() {
                Some(m) if !st.tripped => Some((m.what.clone(), m.since.elapsed() >= timeout)),
                _ => None,
            }
        };
        // The communicator's lock is taken with the state unlocked: `mark` runs under it.
        let Some((what, late)) = oldest else { continue };
        let failure = target.async_error();
        if late || failure.is_some() {
            target.fail(&what, failure.as_deref());
            shared.lock().tripped = true;
        }
    }
}
