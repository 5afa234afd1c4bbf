//! Checked device memory of the emulated device: every device allocation's bounds and which of
//! its bytes were ever written. (Skeleton: the checks are filled in by the emulator runtime.)
//!
//! The emulated libraries (cuBLAS, cuDNN, NCCL) check every range they read or write here, so a
//! call that would read out of bounds, or read memory never written, is an error naming it.

/// Checks that `[ptr, ptr + bytes)` lies inside one live allocation and that every byte of it
/// was written; `who` names the reader in the message.
pub fn check_read(_ptr: u64, _bytes: usize, _who: &str) -> Result<(), String> {
    Ok(())
}

/// Checks that `[ptr, ptr + bytes)` lies inside one live allocation, and marks it written.
pub fn check_write(_ptr: u64, _bytes: usize, _who: &str) -> Result<(), String> {
    Ok(())
}

/// The emulated device that owns the allocation holding `ptr`.
pub fn device_of(_ptr: u64) -> Option<usize> {
    None
}

/// The device bound to the calling thread (`cuCtxSetCurrent`), 0 before any binding.
pub fn current_device() -> usize {
    0
}
