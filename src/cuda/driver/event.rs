//! Events: a marker recorded on a stream, the question whether the device has passed it
//! (cuEventQuery), and another stream waiting for it (cuStreamWaitEvent); none of these makes
//! the host wait or counts as a synchronisation. [`synchronize`] makes the host wait, and
//! counts. Also the extra streams that wait so (a communicator's, the input's copy stream, next
//! to the device's one stream). On the emulated device see `crate::cuda::emu::event`.

use super::counters::{self as c, bump};
use super::cu::{CUstream, DriverError, Result};
use super::route;
use cudarc::driver::{result, sys};

pub use sys::CUevent;

fn real<T>(r: std::result::Result<T, result::DriverError>) -> Result<T> {
    r.map_err(DriverError::from)
}

/// A new event without timing (the cheapest kind).
pub fn create() -> Result<CUevent> {
    route!(
        real => real(result::event::create(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING)),
        emu => crate::cuda::emu::event::create(),
    )
}

/// # Safety
/// An event of [`create`] and a stream of the same context.
pub unsafe fn record(event: CUevent, stream: CUstream) -> Result<()> {
    route!(
        real => real(result::event::record(event, stream)),
        emu => crate::cuda::emu::event::record(event, stream),
    )
}

/// Whether the device has passed the event's last recording.
///
/// # Safety
/// An event of [`create`], not destroyed.
pub unsafe fn query(event: CUevent) -> Result<bool> {
    route!(
        real => match sys::cuEventQuery(event) {
            sys::CUresult::CUDA_SUCCESS => Ok(true),
            sys::CUresult::CUDA_ERROR_NOT_READY => Ok(false),
            code => Err(DriverError::new(code, "")),
        },
        emu => crate::cuda::emu::event::query(event),
    )
}

/// Waits for the event's last recording (a host synchronisation). On the emulated device work
/// ran when it was enqueued: nothing to wait for, but the host now knows that work is done.
///
/// # Safety
/// An event of [`create`], not destroyed.
pub unsafe fn synchronize(event: CUevent) -> Result<()> {
    super::graph::refuse_during_capture("cuEventSynchronize")?;
    bump(&c::SYNCHRONIZATIONS, 1);
    route!(
        real => real(result::event::synchronize(event)),
        emu => crate::cuda::emu::event::synchronize(event),
    )
}

/// Waits for the event's last recording only if the device has not passed it yet: a step
/// behind, it usually has, and then no synchronisation is made (nor counted).
///
/// # Safety
/// An event of [`create`], not destroyed.
pub unsafe fn wait_if_pending(event: CUevent) -> Result<()> {
    if query(event)? {
        return Ok(());
    }
    synchronize(event)
}

/// # Safety
/// An event of [`create`], not used after this call.
pub unsafe fn destroy(event: CUevent) -> Result<()> {
    route!(
        real => real(result::event::destroy(event)),
        emu => crate::cuda::emu::event::destroy(event),
    )
}

/// Makes `stream` wait, on the device, for `event`'s last recording.
///
/// # Safety
/// A live event and stream of the same context.
pub unsafe fn stream_wait(stream: CUstream, event: CUevent) -> Result<()> {
    route!(
        real => real(result::stream::wait_event(
            stream,
            event,
            sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
        )),
        emu => crate::cuda::emu::event::stream_wait(stream, event),
    )
}

/// A new stream of the current context that does not synchronise with the legacy default
/// stream.
pub fn stream_create() -> Result<CUstream> {
    route!(
        real => real(result::stream::create(result::stream::StreamKind::NonBlocking)),
        emu => crate::cuda::emu::event::stream_create(),
    )
}

/// # Safety
/// A stream of [`stream_create`], not used after this call.
pub unsafe fn stream_destroy(stream: CUstream) -> Result<()> {
    route!(
        real => real(result::stream::destroy(stream)),
        emu => crate::cuda::emu::event::stream_destroy(stream),
    )
}

/// Orders everything enqueued on `to` from now on after everything enqueued on `from` so far
/// (an event recorded on `from`, waited for by `to`).
///
/// # Safety
/// Two live streams of the current context.
pub unsafe fn order(from: CUstream, to: CUstream) -> Result<()> {
    let e = create()?;
    let r = record(e, from).and_then(|_| stream_wait(to, e));
    // The wait took the event's state: destroying it now is allowed and frees it later.
    let d = destroy(e);
    r.and(d)
}
