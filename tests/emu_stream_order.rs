//! Stream order on the emulated device (`cuda::emu::order`): work of two streams touching the
//! same memory must be ordered by an event (or by the host waiting in between), as on a GPU,
//! where the emulator's in-order execution would otherwise hide the race.
#![cfg(feature = "cuda-emu")]

use simclr::cuda::driver::{cu, event};
use std::ffi::c_void;

#[path = "support/emu_launch.rs"]
mod emu_launch;
use emu_launch::two_streams as setup;

/// An event recorded on `from` now; `to` waits for it when `wait`, the host when not.
fn order(from: cu::CUstream, to: Option<cu::CUstream>) -> event::CUevent {
    let e = event::create().unwrap();
    unsafe {
        event::record(e, from).unwrap();
        match to {
            Some(s) => event::stream_wait(s, e).unwrap(),
            None => event::synchronize(e).unwrap(),
        }
    }
    e
}

/// y[i] = 2·x[i] over 64 floats, on `stream`.
fn twice(stream: cu::CUstream, x: u64, y: u64) -> Result<(), String> {
    let (mut x, mut y, mut n) = (x, y, 64i32);
    let mut params = [
        &mut x as *mut _ as *mut c_void,
        &mut y as *mut _ as *mut c_void,
        &mut n as *mut _ as *mut c_void,
    ];
    unsafe {
        let m = cu::module_load("test_faults", &[]).unwrap();
        let f = cu::module_get_function(m, "twice").unwrap();
        cu::launch_kernel(f, (1, 1, 1), (64, 1, 1), 0, stream, &mut params)
    }
    .map_err(|e| format!("{e:?}"))
}

fn fill(stream: cu::CUstream, p: u64) -> Result<(), String> {
    unsafe { cu::memset_d8_async(p, 0, 256, stream) }.map_err(|e| format!("{e:?}"))
}

fn expect_race(r: Result<(), String>, parts: &[&str]) {
    let e = r.expect_err("the emulated device must report the unordered access");
    for p in ["stream order", "no event orders the two"]
        .iter()
        .chain(parts)
    {
        assert!(e.contains(p), "message {e:?} lacks {p:?}");
    }
}

#[test]
fn a_read_on_another_stream_needs_an_event_after_the_write() {
    let (_c, [a, b], [x, y]) = setup();
    fill(a, x).unwrap();
    expect_race(
        twice(b, x, y),
        &["a kernel launch", "reads", "last written"],
    );
    // Recorded on `a` after the write, waited for by `b`: ordered.
    fill(a, x).unwrap();
    order(a, Some(b));
    twice(b, x, y).unwrap();
    // The same stream needs nothing.
    twice(b, x, y).unwrap();
}

#[test]
fn a_write_on_another_stream_needs_an_event_after_the_read() {
    let (_c, [a, b], [x, y]) = setup();
    fill(a, x).unwrap();
    order(a, Some(b));
    // `b` is ordered after the fill, not after the read that follows it on `a`: overwriting the
    // input `a` reads is the buffer-reuse race of a double-buffered upload.
    twice(a, x, y).unwrap();
    expect_race(fill(b, x), &["cuMemsetD8Async", "writes", "last read"]);
    expect_race(fill(b, y), &["cuMemsetD8Async", "writes", "last written"]);
}

#[test]
fn the_host_waiting_for_an_event_orders_what_it_enqueues_next() {
    let (_c, [a, b], [x, y]) = setup();
    fill(a, x).unwrap();
    order(a, None);
    twice(b, x, y).unwrap();
}

#[test]
fn an_event_recorded_before_the_write_does_not_order_it() {
    let (_c, [a, b], [x, y]) = setup();
    let e = event::create().unwrap();
    unsafe { event::record(e, a).unwrap() };
    fill(a, x).unwrap();
    unsafe { event::stream_wait(b, e).unwrap() };
    expect_race(twice(b, x, y), &["reads", "last written"]);
}

#[test]
fn memory_allocated_in_stream_order_is_another_streams_after_an_event() {
    let (_c, [a, b], [y, _]) = setup();
    let x = unsafe { cu::malloc_async(a, 256).unwrap() };
    expect_race(fill(b, x), &["cuMemsetD8Async", "writes", "last written"]);
    let x = unsafe { cu::malloc_async(a, 256).unwrap() };
    order(a, Some(b));
    fill(b, x).unwrap();
    // cuMemAlloc (not stream-ordered) is every stream's at once.
    fill(b, y).unwrap();
}

#[test]
fn the_null_stream_is_not_the_devices_compute_stream() {
    // On a GPU the context's stream is a created non-blocking one: work sent to the null
    // (legacy default) stream by mistake is not ordered with it.
    let (c, _, [x, y]) = setup();
    fill(c.stream(), x).unwrap();
    expect_race(
        twice(std::ptr::null_mut(), x, y),
        &["reads", "last written"],
    );
    twice(c.stream(), x, y).unwrap();
}

#[test]
fn a_plain_memset_runs_on_the_null_stream() {
    // cuMemsetD8 (no stream) is work of the legacy default stream, asynchronous to the host:
    // a kernel on the compute stream that reads what it set is unordered with it (how the
    // one-launch sum's counter was first zeroed).
    let (c, _, [x, y]) = setup();
    unsafe { cu::memset_d8_sync(x, 0, 256) }.unwrap();
    expect_race(
        twice(c.stream(), x, y),
        &["kernel launch on stream", "reads"],
    );
    // The host waiting for the null stream orders it before what it enqueues next.
    order(std::ptr::null_mut(), None);
    twice(c.stream(), x, y).unwrap();
}
