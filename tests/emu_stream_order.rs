//! Stream order on the emulated device (`cuda::emu::order`): work of two streams touching the
//! same memory must be ordered by an event (or by the host waiting in between), as on a GPU,
//! where the emulator's in-order execution would otherwise hide the race.
#![cfg(feature = "cuda-emu")]

use simclr::cuda::driver::{self, cu, event, Mode};
use std::ffi::c_void;

fn ctx() -> cu::Context {
    driver::select(Mode::Emulated).unwrap();
    let c = cu::Context::new(0).unwrap();
    c.bind_to_thread().unwrap();
    c
}

/// y[i] = 2·x[i] over n floats, on `stream`.
fn twice(stream: cu::CUstream, x: u64, y: u64, n: i32) -> Result<(), String> {
    let (mut x, mut y, mut n) = (x, y, n);
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

fn fill(stream: cu::CUstream, p: u64, bytes: usize) -> Result<(), String> {
    unsafe { cu::memset_d8_async(p, 0, bytes, stream) }.map_err(|e| format!("{e:?}"))
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
    let _c = ctx();
    let (a, b) = (
        event::stream_create().unwrap(),
        event::stream_create().unwrap(),
    );
    let (x, y) = unsafe { (cu::malloc_sync(256).unwrap(), cu::malloc_sync(256).unwrap()) };
    fill(a, x, 256).unwrap();
    expect_race(
        twice(b, x, y, 64),
        &["a kernel launch", "reads", "last written"],
    );

    // Recorded on `a` after the write, waited for by `b`: ordered.
    fill(a, x, 256).unwrap();
    let e = event::create().unwrap();
    unsafe {
        event::record(e, a).unwrap();
        event::stream_wait(b, e).unwrap();
    }
    twice(b, x, y, 64).unwrap();
    // The same stream needs nothing.
    twice(b, x, y, 64).unwrap();
}

#[test]
fn a_write_on_another_stream_needs_an_event_after_the_read() {
    let _c = ctx();
    let (a, b) = (
        event::stream_create().unwrap(),
        event::stream_create().unwrap(),
    );
    let (x, y) = unsafe { (cu::malloc_sync(256).unwrap(), cu::malloc_sync(256).unwrap()) };
    fill(a, x, 256).unwrap();
    let e = event::create().unwrap();
    unsafe {
        event::record(e, a).unwrap();
        event::stream_wait(b, e).unwrap();
    }
    // `b` is ordered after the fill, not after the read that follows it on `a`: overwriting the
    // input `a` reads is the buffer-reuse race of a double-buffered upload.
    twice(a, x, y, 64).unwrap();
    expect_race(fill(b, x, 256), &["cuMemsetD8Async", "writes", "last read"]);
    expect_race(
        fill(b, y, 256),
        &["cuMemsetD8Async", "writes", "last written"],
    );
}

#[test]
fn the_host_waiting_for_an_event_orders_what_it_enqueues_next() {
    let _c = ctx();
    let (a, b) = (
        event::stream_create().unwrap(),
        event::stream_create().unwrap(),
    );
    let (x, y) = unsafe { (cu::malloc_sync(256).unwrap(), cu::malloc_sync(256).unwrap()) };
    fill(a, x, 256).unwrap();
    let e = event::create().unwrap();
    unsafe {
        event::record(e, a).unwrap();
        event::synchronize(e).unwrap();
    }
    twice(b, x, y, 64).unwrap();
}

#[test]
fn an_event_recorded_before_the_write_does_not_order_it() {
    let _c = ctx();
    let (a, b) = (
        event::stream_create().unwrap(),
        event::stream_create().unwrap(),
    );
    let (x, y) = unsafe { (cu::malloc_sync(256).unwrap(), cu::malloc_sync(256).unwrap()) };
    let e = event::create().unwrap();
    unsafe { event::record(e, a).unwrap() };
    fill(a, x, 256).unwrap();
    unsafe { event::stream_wait(b, e).unwrap() };
    expect_race(twice(b, x, y, 64), &["reads", "last written"]);
}

#[test]
fn memory_allocated_in_stream_order_is_another_streams_after_an_event() {
    let _c = ctx();
    let (a, b) = (
        event::stream_create().unwrap(),
        event::stream_create().unwrap(),
    );
    let x = unsafe { cu::malloc_async(a, 256).unwrap() };
    expect_race(
        fill(b, x, 256),
        &["cuMemsetD8Async", "writes", "last written"],
    );
    let x = unsafe { cu::malloc_async(a, 256).unwrap() };
    let e = event::create().unwrap();
    unsafe {
        event::record(e, a).unwrap();
        event::stream_wait(b, e).unwrap();
    }
    fill(b, x, 256).unwrap();
    // cuMemAlloc (not stream-ordered) is every stream's at once.
    let y = unsafe { cu::malloc_sync(256).unwrap() };
    fill(b, y, 256).unwrap();
}
