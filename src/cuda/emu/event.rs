//! Events of the emulated device. Its streams run each call to its end before returning, so an
//! event is passed as soon as it is recorded, and a stream never has anything to wait for; what
//! events and waits would order on a GPU is followed by `super::order`. For tests of what waits on the device, a thread may
//! [`hold_events`]: the events it records then stay unpassed for ever, as behind a kernel that
//! never ends (a hung NCCL collective on a GPU).

use super::order;
use crate::cuda::driver::cu::{CUresult, CUstream, DriverError, Result};
use crate::cuda::driver::event::CUevent;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

thread_local! {
    static HOLD: Cell<bool> = const { Cell::new(false) };
}

/// Whether the events this thread records from now on stay unpassed.
pub fn hold_events(hold: bool) {
    HOLD.with(|h| h.set(hold));
}

/// An emulated event: whether it is passed, the clock of its stream at its last record
/// (`super::order`), and the origin of the capture it was last recorded in (`super::graph`).
struct Event {
    passed: AtomicBool,
    clock: Mutex<Vec<u64>>,
    captured_in: Mutex<Option<usize>>,
}

fn event(e: CUevent) -> Result<&'static Event> {
    if e.is_null() {
        return Err(DriverError::new(
            CUresult::CUDA_ERROR_INVALID_HANDLE,
            "a null event",
        ));
    }
    // SAFETY: every event handle of the emulator is a leaked-until-destroyed Event.
    Ok(unsafe { &*(e as *const Event) })
}

fn clock(e: &Event) -> MutexGuard<'_, Vec<u64>> {
    e.clock.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn create() -> Result<CUevent> {
    let e = Event {
        passed: AtomicBool::new(true),
        clock: Mutex::new(Vec::new()),
        captured_in: Mutex::new(None),
    };
    Ok(Box::into_raw(Box::new(e)) as CUevent)
}

pub fn record(e: CUevent, stream: CUstream) -> Result<()> {
    let ev = event(e)?;
    *clock(ev) = order::snapshot(stream);
    *captured(ev) = super::graph::origin_of(stream);
    ev.passed.store(!HOLD.with(|h| h.get()), Ordering::SeqCst);
    Ok(())
}

fn captured(e: &Event) -> MutexGuard<'_, Option<usize>> {
    e.captured_in.lock().unwrap_or_else(|p| p.into_inner())
}

/// Refuses `call` on an event last recorded in a stream capture (CUDA_ERROR_CAPTURED_EVENT):
/// it stands for a dependency inside a graph, not for work the device will run. Also once the
/// capture has ended: CUDA documents a captured event as not queryable without saying when that
/// ends, and a plain record is not a node of the graph, so replaying the graph does not record
/// the event again. The emulation takes the strict reading; an event is usable again once
/// recorded outside a capture.
fn not_captured(ev: &Event, call: &str) -> Result<()> {
    let Some(origin) = *captured(ev) else {
        return Ok(());
    };
    let when = if super::graph::in_progress(origin) {
        "still in progress"
    } else {
        "that has ended (its graph's replays do not record it again)"
    };
    Err(DriverError::new(
        CUresult::CUDA_ERROR_CAPTURED_EVENT,
        format!("{call} on an event last recorded in a stream capture {when}"),
    ))
}

/// Whether the event is passed; when it is, the host knows the work before it is done.
pub fn query(e: CUevent) -> Result<bool> {
    let ev = event(e)?;
    not_captured(ev, "cuEventQuery")?;
    let done = ev.passed.load(Ordering::SeqCst);
    if done {
        order::host_waited(&clock(ev))?;
    }
    Ok(done)
}

/// The host waits for the event (work ran at enqueue: it is passed unless held).
pub fn synchronize(e: CUevent) -> Result<()> {
    let ev = event(e)?;
    not_captured(ev, "cuEventSynchronize")?;
    order::host_waited(&clock(ev))
}

/// Work enqueued on `stream` from now on is ordered after the event's last record; a captured
/// event forks `stream` into its capture (`super::graph::waits`).
pub fn stream_wait(stream: CUstream, e: CUevent) -> Result<()> {
    let ev = event(e)?;
    let recorded_in = *captured(ev);
    if recorded_in.is_some_and(|o| !super::graph::in_progress(o)) {
        not_captured(ev, "cuStreamWaitEvent")?;
    }
    super::graph::waits(stream, recorded_in)?;
    order::wait(stream, &clock(ev));
    Ok(())
}

/// # Safety
/// An event of [`create`], not used after this call.
pub unsafe fn destroy(e: CUevent) -> Result<()> {
    event(e)?;
    drop(Box::from_raw(e as *mut Event));
    Ok(())
}

/// A stream of its own (a distinct handle, so that `super::order` tells streams apart).
pub fn stream_create() -> Result<CUstream> {
    Ok(Box::into_raw(Box::new(0u64)) as CUstream)
}

/// # Safety
/// A stream of [`stream_create`], not used after this call.
pub unsafe fn stream_destroy(stream: CUstream) -> Result<()> {
    if stream.is_null() {
        return Err(DriverError::new(
            CUresult::CUDA_ERROR_INVALID_HANDLE,
            "a null stream",
        ));
    }
    drop(Box::from_raw(stream as *mut u64));
    Ok(())
}
