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
//!   the copy, at that call);
//! - a download into pinned memory fills it with 0xFF bytes (NaN as floats) at enqueue, and its
//!   data arrives when the host waits for something covering the copy: a read before sees
//!   garbage, as it may on a GPU. Freeing the memory before that is an error.
//!
//! Pageable memory needs none of this: CUDA stages an upload from it before returning and
//! finishes a download into it before returning.

use super::order;
use std::collections::BTreeMap;
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

#[derive(Default)]
struct State {
    /// Live pinned allocations: start -> length.
    pinned: BTreeMap<u64, usize>,
    in_flight: Vec<InFlight>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn state() -> MutexGuard<'static, Option<State>> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    f(state().get_or_insert_with(State::default))
}

/// `[p, p + n)` became pinned memory (cuMemHostAlloc).
pub fn registered(p: u64, n: usize) {
    with(|s| s.pinned.insert(p, n));
}

/// Whether `[p, p + n)` lies in one pinned allocation.
fn is_pinned(s: &State, p: u64, n: usize) -> bool {
    s.pinned
        .range(..=p)
        .next_back()
        .is_some_and(|(&start, &len)| p - start + n as u64 <= len as u64)
}

/// The copies in flight over `[p, p + n)` that the host has not waited for, refused as `why`
/// for an upload whose memory changed or any download; the others (unchanged uploads) stay.
fn refuse_unwaited(s: &State, p: u64, n: usize, why: &str) -> Result<(), String> {
    for c in s.in_flight.iter().filter(|c| c.overlaps(p, n)) {
        // SAFETY: a copy in flight is dropped before its pinned memory is unregistered.
        if !c.upload || !unsafe { c.source_unchanged() } {
            return Err(format!(
                "{why} while {} may still be running: the host has not waited for it (an \
                 event or a stream synchronisation after the copy); on a GPU the copy {}",
                c.describe(),
                match c.upload {
                    true => "could read the new bytes",
                    false => "could still write the memory",
                }
            ));
        }
    }
    Ok(())
}

/// `[p, p + n)` stops being pinned memory (cuMemFreeHost): refused while a copy over it may
/// still be running on a GPU.
pub fn unregistering(p: u64, n: usize) -> Result<(), String> {
    with(|s| {
        refuse_unwaited(s, p, n, &format!("cuMemFreeHost of {p:#x}"))?;
        s.in_flight.retain(|c| !c.overlaps(p, n));
        s.pinned.remove(&p);
        Ok(())
    })
}

/// An upload of `[src, src + n)` by the current operation, after its bytes were copied: kept
/// when the memory is pinned.
///
/// # Safety
/// `src` holds `n` readable bytes.
pub unsafe fn uploaded(src: *const u8, n: usize) -> Result<(), String> {
    let p = src as u64;
    with(|s| {
        if !is_pinned(s, p, n) {
            return Ok(());
        }
        refuse_unwaited(
            s,
            p,
            n,
            "an upload from memory an earlier upload read, changed",
        )?;
        let op = order::current_op().ok_or("an upload outside a stream operation")?;
        s.in_flight.push(InFlight {
            host: p,
            bytes: std::slice::from_raw_parts(src, n).to_vec(),
            op,
            upload: true,
        });
        Ok(())
    })
}

/// A download of `data` into `[dst, dst + n)` by the current operation: written now into
/// pageable memory; into pinned memory, 0xFF now and `data` once the host waited for the copy.
///
/// # Safety
/// `dst` has room for `data.len()` writable bytes.
pub unsafe fn download(dst: *mut u8, data: &[u8]) -> Result<(), String> {
    let (p, n) = (dst as u64, data.len());
    with(|s| {
        if !is_pinned(s, p, n) {
            std::ptr::copy_nonoverlapping(data.as_ptr(), dst, n);
            return Ok(());
        }
        let op = order::current_op().ok_or("a download outside a stream operation")?;
        std::ptr::write_bytes(dst, 0xFF, n);
        s.in_flight.push(InFlight {
            host: p,
            bytes: data.to_vec(),
            op,
            upload: false,
        });
        Ok(())
    })
}

/// The host waited (order::host_waited): the copies it now covers are done. A download's data
/// arrives; an upload whose memory changed since it read it is an error.
pub fn settle() -> Result<(), String> {
    with(|s| {
        let (done, still): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut s.in_flight)
            .into_iter()
            .partition(|c| order::host_waited_for(c.op));
        s.in_flight = still;
        let mut first_err = None;
        for c in done {
            // SAFETY: the pinned memory is live (a copy in flight keeps it from being freed).
            unsafe {
                if !c.upload {
                    let dst = c.host as *mut u8;
                    std::ptr::copy_nonoverlapping(c.bytes.as_ptr(), dst, c.bytes.len());
                } else if !c.source_unchanged() && first_err.is_none() {
                    first_err = Some(format!(
                        "the host changed the pinned memory of {} before waiting for the copy: \
                         on a GPU the copy could read the new bytes",
                        c.describe()
                    ));
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    })
}
