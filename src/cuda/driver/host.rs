//! Page-locked host memory on the driver floor: what an upload needs to run without the host
//! waiting. A copy from pinned memory is a true DMA the driver never stages, so the source must
//! stay untouched until the copy ran; an event recorded after it says when (`super::event`).
//! On the emulated device pinned memory is ordinary aligned host memory (`emu::cu::malloc_host`).

use super::cu::{DriverError, Result};
use super::route;
use cudarc::driver::result;
use std::ffi::c_void;

fn real<T>(r: std::result::Result<T, result::DriverError>) -> Result<T> {
    r.map_err(DriverError::from)
}

/// `bytes` (at least 1) of page-locked host memory.
///
/// # Safety
/// A context is current on this thread; free with [`free_host`] and the same `bytes`.
pub unsafe fn malloc_host(bytes: usize) -> Result<*mut u8> {
    route!(
        real => real(result::malloc_host(bytes.max(1), 0)).map(|p| p as *mut u8),
        emu => crate::cuda::emu::cu::malloc_host(bytes),
    )
}

/// # Safety
/// `p` came from [`malloc_host`] with `bytes`, and no copy from it is pending.
pub unsafe fn free_host(p: *mut u8, bytes: usize) -> Result<()> {
    route!(
        real => { let _ = bytes; real(result::free_host(p as *mut c_void)) },
        emu => crate::cuda::emu::cu::free_host(p, bytes),
    )
}
