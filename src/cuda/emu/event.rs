//! Events of the emulated device. Its streams run each call to its end before returning, so an
//! event is passed as soon as it is recorded, and a stream never has anything to wait for;
//! extra streams are names only. For tests of what waits on the device, a thread may
//! [`hold_events`]: the events it records then stay unpassed for ever, as behind a kernel that
//! never ends (a hung NCCL collective on a GPU).

use crate::cuda::driver::cu::{CUresult, CUstream, DriverError, Result};
use crate::cuda::driver::event::CUevent;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    static HOLD: Cell<bool> = const { Cell::new(false) };
}

/// Whether the events this thread records from now on stay unpassed.
pub fn hold_events(hold: bool) {
    HOLD.with(|h| h.set(hold));
}

fn passed(e: CUevent) -> Result<&'static AtomicBool> {
    if e.is_null() {
        return Err(DriverError::new(
            CUresult::CUDA_ERROR_INVALID_HANDLE,
            "a null event",
        ));
    }
    // SAFETY: every event handle of the emulator is a leaked-until-destroyed AtomicBool.
    Ok(unsafe { &*(e as *const AtomicBool) })
}

pub fn create() -> Result<CUevent> {
    Ok(Box::into_raw(Box::new(AtomicBool::new(true))) as CUevent)
}

pub fn record(e: CUevent, _stream: CUstream) -> Result<()> {
    passed(e)?.store(!HOLD.with(|h| h.get()), Ordering::SeqCst);
    Ok(())
}

pub fn query(e: CUevent) -> Result<bool> {
    Ok(passed(e)?.load(Ordering::SeqCst))
}

/// # Safety
/// An event of [`create`], not used after this call.
pub unsafe fn destroy(e: CUevent) -> Result<()> {
    passed(e)?;
    drop(Box::from_raw(e as *mut AtomicBool));
    Ok(())
}

pub fn stream_create() -> Result<CUstream> {
    Ok(std::ptr::NonNull::dangling().as_ptr())
}
