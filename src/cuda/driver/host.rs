//! Page-locked host memory and events on the driver floor: what an upload needs to run without
//! the host waiting. A copy from pinned memory is a true DMA the driver never stages, so the
//! source must stay untouched until the copy ran; an event recorded after it says when.
//! Waiting on an event counts as a host synchronisation; a query that finds it done does not.
//! On the emulated device work runs when it is enqueued, so every event is complete when
//! recorded, and pinned memory is ordinary aligned host memory.

use super::counters::{self as c, bump};
use super::cu::{CUstream, DriverError, Result};
use super::route;
use cudarc::driver::{result, sys};
use std::ffi::c_void;

pub use sys::CUevent;

fn real<T>(r: std::result::Result<T, result::DriverError>) -> Result<T> {
    r.map_err(DriverError::from)
}

/// Alignment of emulated pinned buffers (what a DMA engine would want).
#[cfg(feature = "cuda-emu")]
const EMU_ALIGN: usize = 256;

/// `bytes` (at least 1) of page-locked host memory.
///
/// # Safety
/// A context is current on this thread; free with [`free_host`] and the same `bytes`.
pub unsafe fn malloc_host(bytes: usize) -> Result<*mut u8> {
    route!(
        real => real(result::malloc_host(bytes.max(1), 0)).map(|p| p as *mut u8),
        emu => {
            let layout = std::alloc::Layout::from_size_align(bytes.max(1), EMU_ALIGN)
                .map_err(|e| DriverError::new(sys::CUresult::CUDA_ERROR_INVALID_VALUE, e.to_string()))?;
            let p = std::alloc::alloc(layout);
            if p.is_null() {
                Err(DriverError::new(sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY, format!("{bytes} pinned bytes")))
            } else {
                Ok(p)
            }
        },
    )
}

/// # Safety
/// `p` came from [`malloc_host`] with `bytes`, and no copy from it is pending.
pub unsafe fn free_host(p: *mut u8, bytes: usize) -> Result<()> {
    route!(
        real => { let _ = bytes; real(result::free_host(p as *mut c_void)) },
        emu => {
            // Same layout as allocated (checked there).
            let layout = std::alloc::Layout::from_size_align_unchecked(bytes.max(1), EMU_ALIGN);
            std::alloc::dealloc(p, layout);
            Ok(())
        },
    )
}

/// An event without timing (the cheap kind), to order and to poll.
pub fn event_create() -> Result<CUevent> {
    route!(
        real => real(result::event::create(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING)),
        // Any non-null handle: emulated events carry no state.
        emu => Ok(std::ptr::NonNull::<c_void>::dangling().as_ptr() as CUevent),
    )
}

/// # Safety
/// `e` came from [`event_create`]; `stream` is a live stream.
pub unsafe fn event_record(e: CUevent, stream: CUstream) -> Result<()> {
    route!(real => real(result::event::record(e, stream)), emu => { let _ = (e, stream); Ok(()) })
}

/// Whether the work before the event's last record is done (never waits).
///
/// # Safety
/// `e` came from [`event_create`].
pub unsafe fn event_done(e: CUevent) -> Result<bool> {
    route!(
        real => match result::event::query(e) {
            Ok(()) => Ok(true),
            Err(result::DriverError(sys::CUresult::CUDA_ERROR_NOT_READY)) => Ok(false),
            Err(err) => Err(err.into()),
        },
        emu => { let _ = e; Ok(true) },
    )
}

/// Waits for the event (a host synchronisation).
///
/// # Safety
/// `e` came from [`event_create`].
pub unsafe fn event_synchronize(e: CUevent) -> Result<()> {
    super::graph::refuse_during_capture("cuEventSynchronize")?;
    bump(&c::SYNCHRONIZATIONS, 1);
    route!(real => real(result::event::synchronize(e)), emu => { let _ = e; Ok(()) })
}

/// # Safety
/// `e` came from [`event_create`] and is not used afterwards.
pub unsafe fn event_destroy(e: CUevent) -> Result<()> {
    route!(real => real(result::event::destroy(e)), emu => { let _ = e; Ok(()) })
}

/// A second stream that does not synchronise with the legacy default stream (for copies that
/// overlap the compute stream's work).
pub fn stream_create() -> Result<CUstream> {
    route!(
        real => real(result::stream::create(result::stream::StreamKind::NonBlocking)),
        // Work runs when enqueued on the emulated device: any non-null handle will do.
        emu => Ok(std::ptr::NonNull::<c_void>::dangling().as_ptr() as CUstream),
    )
}

/// Work enqueued on `stream` after this waits for the event's last record (the host does not).
///
/// # Safety
/// `e` came from [`event_create`]; `stream` is a live stream.
pub unsafe fn stream_wait_event(stream: CUstream, e: CUevent) -> Result<()> {
    route!(
        real => real(result::stream::wait_event(stream, e, sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT)),
        emu => { let _ = (stream, e); Ok(()) },
    )
}

/// # Safety
/// `stream` came from [`stream_create`], and nothing is enqueued on it afterwards.
pub unsafe fn stream_destroy(stream: CUstream) -> Result<()> {
    route!(real => real(result::stream::destroy(stream)), emu => { let _ = stream; Ok(()) })
}
