//! Asynchronous copies between device memory and pinned (page-locked) host memory, as a GPU
//! runs them: when its stream reaches them, not when they are enqueued. The host may refill
//! the source of such an upload, or read the destination of such a download, only once it has
//! waited for the copy (an event or a stream synchronisation that covers it). The emulated
//! device copies at enqueue, so without this a buffer refilled too early, or read too early,
//! would still hold the right bytes here and the wrong ones on a GPU. So:
//!
//! - an upload from pinned memory keeps the bytes it read; when the host next waits for
//!   something covering the copy, uploads the same memory again, or frees it, the memory must
//!   still hold them, or the host changed it while the copy may not have run (an error naming
//!   the copy, at that call). An upload ordered after an earlier one of the same bytes (its
//!   stream's, say) replaces it: a wait covering the later covers the earlier, so a loop that
//!   uploads one buffer and never waits keeps one copy of it, not one per upload;
//! - a download into pinned memory fills it with 0xFF bytes (NaN as floats) at enqueue, and its
//!   data arrives when the host waits for something covering the copy: a read before sees
//!   garbage, as it may on a GPU. Freeing the memory before that is an error.
//!
//! Pageable memory needs none of this: CUDA stages an upload from it before returning and
//! finishes a download into it before returning.

use super::{ffi, order};
use crate::cuda::driver::cu::{CUresult, DriverError, Result};
use std::sync::{Mutex, MutexGuard};

/// A copy in flight: its host range, the operation that made it, and its bytes (an upload's
/// as read at enqueue, a download's still to be written).
struct InFlight {
    host: u64,
    bytes: Vec<u8>,
    op: order::OpId,
    upload: bool,
}

impl InFlight {
    fn overlaps(&self, host: u64, n: usize) -> bool {
        host < self.host + self.bytes.len() as u64 && self.host < host + n as u64
    }

    fn describe(&self) -> String {
        let (call, dir) = match self.upload {
            true => ("cuMemcpyHtoDAsync", "from"),
            false => ("cuMemcpyDtoHAsync", "into"),
        };
        format!(
            "the {call} of {} bytes {dir} pinned host memory at {:#x} ({})",
            self.bytes.len(),
            self.host,
            self.op
        )
    }

    /// For an upload: whether the host memory still holds what the copy read.
    ///
    /// # Safety
    /// The range is live pinned memory.
    unsafe fn source_unchanged(&self) -> bool {
        std::slice::from_raw_parts(self.host as *const u8, self.bytes.len()) == &self.bytes[..]
    }
}

/// The copies in flight, in the order they were enqueued.
static IN_FLIGHT: Mutex<Vec<InFlight>> = Mutex::new(Vec::new());

fn in_flight() -> MutexGuard<'static, Vec<InFlight>> {
    IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `[p, p + n)` lies in one pinned allocation (the runtime's registry, which lets
/// kernels reach pinned memory).
fn is_pinned(p: u64, n: usize) -> bool {
    // SAFETY: a lookup in the runtime's registry.
    unsafe { ffi::emu_is_pinned(p, n as u64) != 0 }
}

/// A misuse of pinned memory, reported at the call that shows it.
fn illegal(m: String) -> DriverError {
    DriverError::new(CUresult::CUDA_ERROR_ILLEGAL_STATE, m)
}

/// The copies in flight over `[p, p + n)` that the host has not waited for, refused as `why`
/// for an upload whose memory changed or any download; the others (unchanged uploads) stay.
fn refuse_unwaited(flying: &[InFlight], p: u64, n: usize, why: &str) -> Result<()> {
    for c in flying.iter().filter(|c| c.overlaps(p, n)) {
        // SAFETY: a copy in flight is dropped before its pinned memory is unregistered.
        if !c.upload || !unsafe { c.source_unchanged() } {
            return Err(illegal(format!(
                "{why} while {} may still be running: the host has not waited for it (an \
                 event or a stream synchronisation after the copy); on a GPU the copy {}",
                c.describe(),
                match c.upload {
                    true => "could read the new bytes",
                    false => "could still write the memory",
                }
            )));
        }
    }
    Ok(())
}

/// `[p, p + n)` stops being pinned memory (cuMemFreeHost): refused while a copy over it may
/// still be running on a GPU.
pub fn unregistering(p: u64, n: usize) -> Result<()> {
    let mut flying = in_flight();
    refuse_unwaited(&flying, p, n, &format!("cuMemFreeHost of {p:#x}"))?;
    flying.retain(|c| !c.overlaps(p, n));
    Ok(())
}

/// An upload of `[src, src + n)` by the current operation, after its bytes were copied: kept
/// when the memory is pinned.
///
/// # Safety
/// `src` holds `n` readable bytes.
pub unsafe fn uploaded(src: *const u8, n: usize) -> Result<()> {
    let p = src as u64;
    if !is_pinned(p, n) {
        return Ok(());
    }
    let mut flying = in_flight();
    let why = "an upload from memory an earlier upload read, changed";
    refuse_unwaited(&flying, p, n, why)?;
    let op = order::current_op()
        .ok_or_else(|| illegal("an upload outside a stream operation".into()))?;
    // The earlier uploads of this memory are unchanged (refused above otherwise); those within
    // it and ordered before this one are checked by this one's snapshot and wait.
    flying.retain(|c| {
        let within = p <= c.host && c.host + c.bytes.len() as u64 <= p + n as u64;
        !(c.upload && within && order::current_op_follows(c.op))
    });
    flying.push(InFlight {
        host: p,
        bytes: std::slice::from_raw_parts(src, n).to_vec(),
        op,
        upload: true,
    });
    Ok(())
}

/// A download of `data` into `[dst, dst + n)` by the current operation: written now into
/// pageable memory; into pinned memory, 0xFF now and `data` once the host waited for the copy.
///
/// # Safety
/// `dst` has room for `data.len()` writable bytes.
pub unsafe fn download(dst: *mut u8, data: &[u8]) -> Result<()> {
    let (p, n) = (dst as u64, data.len());
    if !is_pinned(p, n) {
        std::ptr::copy_nonoverlapping(data.as_ptr(), dst, n);
        return Ok(());
    }
    let op = order::current_op()
        .ok_or_else(|| illegal("a download outside a stream operation".into()))?;
    std::ptr::write_bytes(dst, 0xFF, n);
    in_flight().push(InFlight {
        host: p,
        bytes: data.to_vec(),
        op,
        upload: false,
    });
    Ok(())
}

/// The copies in flight over `[p, p + n)`, uploads and downloads (a leak shows here).
pub fn in_flight_over(p: u64, n: usize) -> usize {
    in_flight().iter().filter(|c| c.overlaps(p, n)).count()
}

/// The host waited (order::host_waited): the copies it now covers are done. A download's data
/// arrives; an upload whose memory changed since it read it is an error.
pub fn settle() -> Result<()> {
    let done: Vec<InFlight> = {
        let mut flying = in_flight();
        let (done, still) = std::mem::take(&mut *flying)
            .into_iter()
            .partition(|c| order::host_waited_for(c.op));
        *flying = still;
        done
    };
    let mut first_err = None;
    for c in done {
        // SAFETY: the pinned memory is live (a copy in flight keeps it from being freed).
        unsafe {
            if !c.upload {
                let dst = c.host as *mut u8;
                std::ptr::copy_nonoverlapping(c.bytes.as_ptr(), dst, c.bytes.len());
            } else if !c.source_unchanged() && first_err.is_none() {
                first_err = Some(illegal(format!(
                    "the host changed the pinned memory of {} before waiting for the copy: on a \
                     GPU the copy could read the new bytes",
                    c.describe()
                )));
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}
