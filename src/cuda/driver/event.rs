//! Events: a marker recorded on a stream, and the question whether the device has passed it
//! (cuEventQuery), which never makes the host wait and is not counted as a synchronisation.
//! On the emulated device, whose streams run each call to its end before returning, every
//! recorded event has already completed.

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
        emu => Ok(std::ptr::NonNull::dangling().as_ptr()),
    )
}

/// # Safety
/// An event of [`create`] and a stream of the same context.
pub unsafe fn record(event: CUevent, stream: CUstream) -> Result<()> {
    route!(
        real => real(result::event::record(event, stream)),
        emu => {
            let _ = (event, stream);
            Ok(())
        },
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
        emu => {
            let _ = event;
            Ok(true)
        },
    )
}

/// # Safety
/// An event of [`create`], not used after this call.
pub unsafe fn destroy(event: CUevent) -> Result<()> {
    route!(
        real => real(result::event::destroy(event)),
        emu => {
            let _ = event;
            Ok(())
        },
    )
}
