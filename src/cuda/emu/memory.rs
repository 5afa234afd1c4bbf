//! Checked device memory of the emulated device: every device allocation's bounds and which of
//! its bytes were ever written (the runtime's arena and shadow, emu/memory.cpp).
//!
//! The emulated libraries (cuBLAS, cuDNN, NCCL) check every range they read or write here, so a
//! call that would read out of bounds, or read memory never written, is an error naming it.

use super::ffi;
use std::cell::Cell;
use std::ptr;

thread_local! {
    /// The device bound to this host thread by `cuCtxSetCurrent` (cu::Context::bind_to_thread).
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

fn check(ptr: u64, bytes: usize, write: bool, who: &str) -> Result<(), String> {
    let mut err = ptr::null_mut();
    // SAFETY: the runtime only reads its own shadow for this range.
    let code = unsafe { ffi::emu_check(ptr, bytes as u64, write as i32, &mut err) };
    if code == 0 {
        Ok(())
    } else {
        Err(format!("{who}: {}", ffi::take(err)))
    }
}

/// Checks that `[ptr, ptr + bytes)` lies inside one live allocation and that every byte of it
/// was written; `who` names the reader in the message.
pub fn check_read(ptr: u64, bytes: usize, who: &str) -> Result<(), String> {
    check(ptr, bytes, false, who)
}

/// Checks that `[ptr, ptr + bytes)` lies inside one live allocation, and marks it written.
pub fn check_write(ptr: u64, bytes: usize, who: &str) -> Result<(), String> {
    check(ptr, bytes, true, who)
}

/// Checks that `[ptr, ptr + bytes)` lies inside one live allocation, changing nothing (neither
/// the data nor which bytes count as written): the runtime's device-to-device copy of the range
/// onto itself, which checks both ranges' bounds and allows never-written bytes.
pub fn check_bounds(ptr: u64, bytes: usize, who: &str) -> Result<(), String> {
    let mut err = ptr::null_mut();
    // SAFETY: the runtime validates the range before it moves anything; a range copied onto
    // itself leaves data and shadow as they were.
    let code = unsafe { ffi::emu_copy_dtod(ptr, ptr, bytes as u64, &mut err) };
    if code == 0 {
        Ok(())
    } else {
        Err(format!("{who}: {}", ffi::take(err)))
    }
}

/// The emulated device that owns the allocation holding `ptr`.
pub fn device_of(ptr: u64) -> Option<usize> {
    // SAFETY: pure arithmetic on the arena's bounds.
    let d = unsafe { ffi::emu_device_of(ptr) };
    usize::try_from(d).ok()
}

/// The device bound to the calling thread (`cuCtxSetCurrent`), 0 before any binding.
pub fn current_device() -> usize {
    CURRENT.with(|c| c.get())
}

pub(super) fn set_current_device(d: usize) {
    CURRENT.with(|c| c.set(d));
}
