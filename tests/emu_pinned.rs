//! Copies to and from pinned host memory on the emulated device (`cuda::emu::pinned`): a GPU
//! runs them when their stream reaches them, so the host may refill an upload's source, or read
//! a download's destination, only after waiting for the copy. The emulator copies at enqueue
//! and checks that instead: an upload's memory changed before the wait is an error at the wait
//! (or at the next upload of that memory, or its free); a download's memory holds 0xFF until
//! the wait. Uploads the host never waits for are kept once per buffer, not once per upload.
#![cfg(feature = "cuda-emu")]

use simclr::cuda::driver::cu::{CUresult, DriverError};
use simclr::cuda::driver::{cu, event, host};
use simclr::cuda::emu::pinned::in_flight_over;

#[path = "support/emu_launch.rs"]
mod emu_launch;

const N: usize = 64;

/// One test at a time: a context synchronisation (`a_download_arrives_when_the_host_waits_for_it`)
/// waits for every stream of the device, so it would meet another test's deliberate change of an
/// upload's memory before its wait (CI saw the two tests fail each other once).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Pinned memory for N bytes, as a slice the test writes and reads.
struct Pinned(*mut u8);

impl Pinned {
    fn new() -> Pinned {
        Pinned(unsafe { host::malloc_host(N) }.unwrap())
    }
    fn bytes(&self) -> &[u8] {
        unsafe { std::slice::from_raw_parts(self.0, N) }
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        unsafe { std::slice::from_raw_parts_mut(self.0, N) }
    }
    /// The copies in flight over this memory.
    fn in_flight(&self) -> usize {
        in_flight_over(self.0 as u64, N)
    }
    fn free(self) -> Result<(), DriverError> {
        unsafe { host::free_host(self.0, N) }
    }
}

fn upload(p: &Pinned, dst: u64, s: cu::CUstream) -> Result<(), DriverError> {
    unsafe { cu::memcpy_htod_async(dst, p.bytes(), s) }
}

fn download(p: &mut Pinned, src: u64, s: cu::CUstream) -> Result<(), DriverError> {
    unsafe { cu::memcpy_dtoh_async(p.bytes_mut(), src, s) }
}

/// Records an event on `s` and waits for it on the host.
fn wait(s: cu::CUstream) -> Result<(), DriverError> {
    let e = event::create().unwrap();
    unsafe {
        event::record(e, s).unwrap();
        let r = event::synchronize(e);
        event::destroy(e).unwrap();
        r
    }
}

fn refused(r: Result<(), DriverError>, part: &str) {
    let e = r.expect_err("the emulated device must refuse this");
    assert_eq!(e.code, CUresult::CUDA_ERROR_ILLEGAL_STATE, "{e:?}");
    assert!(format!("{e:?}").contains(part), "{e:?} lacks {part:?}");
}

#[test]
fn a_source_refilled_after_the_wait_is_fine_and_before_it_is_an_error() {
    let _serial = one_at_a_time();
    let (_c, [a, _], [x, _]) = emu_launch::two_streams();
    let mut p = Pinned::new();
    // Waited for, then refilled: the double buffer done right.
    p.bytes_mut().fill(1);
    upload(&p, x, a).unwrap();
    wait(a).unwrap();
    p.bytes_mut().fill(2);
    upload(&p, x, a).unwrap();
    // Refilled before waiting: found at the wait...
    p.bytes_mut().fill(3);
    refused(
        wait(a),
        "changed the pinned memory of the cuMemcpyHtoDAsync of 64 bytes",
    );
    // ... or at the next upload of the same memory.
    upload(&p, x, a).unwrap();
    p.bytes_mut()[10] = 4;
    refused(
        upload(&p, x, a),
        "an upload from memory an earlier upload read, changed",
    );
    // Put back, the first of the two uploads finds its bytes at the wait.
    p.bytes_mut()[10] = 3;
    wait(a).unwrap();
    p.free().unwrap();
}

#[test]
fn a_download_arrives_when_the_host_waits_for_it() {
    let _serial = one_at_a_time();
    let (c, [a, b], [x, _]) = emu_launch::two_streams();
    unsafe { cu::memset_d8_async(x, 7, 256, a) }.unwrap();
    let mut p = Pinned::new();
    download(&mut p, x, a).unwrap();
    assert!(p.bytes().iter().all(|&v| v == 0xFF), "read before the wait");
    // A wait on another stream does not cover it.
    wait(b).unwrap();
    assert!(p.bytes().iter().all(|&v| v == 0xFF));
    wait(a).unwrap();
    assert!(p.bytes().iter().all(|&v| v == 7), "after the wait");
    // Pageable memory: the copy is done when the call returns, as CUDA finishes it.
    let mut v = vec![0u8; N];
    unsafe { cu::memcpy_dtoh_async(&mut v, x, a) }.unwrap();
    assert!(v.iter().all(|&b| b == 7));
    // A stream synchronisation covers the context's stream.
    wait(a).unwrap();
    let s = c.stream();
    unsafe { cu::memset_d8_async(x, 9, 256, s) }.unwrap();
    download(&mut p, x, s).unwrap();
    c.synchronize().unwrap();
    assert!(p.bytes().iter().all(|&v| v == 9));
    p.free().unwrap();
}

#[test]
fn pinned_memory_is_not_freed_under_a_copy_the_host_did_not_wait_for() {
    let _serial = one_at_a_time();
    let (_c, [a, _], [x, _]) = emu_launch::two_streams();
    unsafe { cu::memset_d8_async(x, 5, 256, a) }.unwrap();
    let mut p = Pinned::new();
    download(&mut p, x, a).unwrap();
    let ptr = p.0;
    refused(p.free(), "cuMemFreeHost");
    wait(a).unwrap();
    unsafe { host::free_host(ptr, N) }.unwrap();
}

#[test]
fn uploads_never_waited_for_keep_one_snapshot_per_buffer_and_still_catch_a_change() {
    let _serial = one_at_a_time();
    let (_c, [a, b], [x, y]) = emu_launch::two_streams();
    let mut p = Pinned::new();
    p.bytes_mut().fill(1);
    // One stream: each upload is ordered after the one before, which it replaces.
    for _ in 0..1000 {
        upload(&p, x, a).unwrap();
    }
    assert_eq!(p.in_flight(), 1);
    // Another stream, not ordered after them: both are kept; waiting for one leaves the other,
    // whose copy a change still reaches.
    upload(&p, y, b).unwrap();
    assert_eq!(p.in_flight(), 2);
    wait(b).unwrap();
    assert_eq!(p.in_flight(), 1);
    p.bytes_mut().fill(2);
    refused(
        wait(a),
        "changed the pinned memory of the cuMemcpyHtoDAsync of 64 bytes",
    );
    assert_eq!(p.in_flight(), 0);
    // Ordered by an event: stream b's upload follows stream a's and replaces it.
    upload(&p, x, a).unwrap();
    let e = event::create().unwrap();
    unsafe {
        event::record(e, a).unwrap();
        event::stream_wait(b, e).unwrap();
        event::destroy(e).unwrap();
    }
    upload(&p, y, b).unwrap();
    assert_eq!(p.in_flight(), 1);
    // A part of the buffer does not replace the whole: the rest would go unchecked.
    unsafe { cu::memcpy_htod_async(x, &p.bytes()[..N / 2], b) }.unwrap();
    assert_eq!(p.in_flight(), 2);
    p.bytes_mut()[N - 1] = 3;
    refused(wait(b), "changed the pinned memory");
    p.free().unwrap();
}
