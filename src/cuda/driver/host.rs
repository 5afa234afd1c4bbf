//! Page-locked host memory on the driver floor: what an upload needs to run without the host
//! waiting. A copy from pinned memory is a true DMA the driver never stages, so the source must
//! stay untouched until the copy ran; an event recorded after it says when (`super::event`).
//! On the emulated device pinned memory is ordinary aligned host memory.

use super::cu::{DriverError, Result};
use super::route;
use cudarc::driver::result;
#[cfg(feature = "cuda-emu")]
use cudarc::driver::sys;
use std::ffi::c_void;

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
