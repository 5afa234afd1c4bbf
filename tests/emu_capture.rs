//! Stream capture on the emulated device follows streams, as on a GPU (`cuda::emu::graph`):
//! the captured stream's work (from any thread) and that of the streams it forks with events is
//! recorded; other streams' work runs at once; forks must be joined back before the capture
//! ends; captured events cannot be queried, nor waited on once the capture ended; a captured
//! stream cannot wait on an outside event; an NCCL collective on a captured stream is refused
//! (the emulated NCCL cannot record one).
#![cfg(feature = "cuda-emu")]

use simclr::cuda::driver::cu::CUresult;
use simclr::cuda::driver::{self, cu, event, graph, nccl};

#[path = "support/emu_launch.rs"]
mod emu_launch;

/// Two new streams of device 0 and two 256-byte buffers, each zeroed on its stream.
fn setup() -> (cu::Context, [cu::CUstream; 2], [u64; 2]) {
    let (c, streams, buffers) = emu_launch::two_streams();
    for (&s, &b) in streams.iter().zip(&buffers) {
        fill(s, b, 0);
    }
    (c, streams, buffers)
}

fn fill(stream: cu::CUstream, p: u64, v: u8) {
    fill_n(stream, p, v, 256);
}

fn fill_n(stream: cu::CUstream, p: u64, v: u8, bytes: usize) {
    unsafe { cu::memset_d8_async(p, v, bytes, stream) }.unwrap();
}

/// The first byte of `p`, read on `stream`.
fn first(stream: cu::CUstream, p: u64) -> u8 {
    let mut b = [0u8; 256];
    unsafe { cu::memcpy_dtoh_async(&mut b, p, stream) }.unwrap();
    b[0]
}

/// `to` waits for an event recorded on `from` now.
fn order(from: cu::CUstream, to: cu::CUstream) -> driver::cu::Result<()> {
    let e = event::create().unwrap();
    unsafe {
        event::record(e, from).unwrap();
        event::stream_wait(to, e)
    }
}

/// Ends `s`'s capture; the executable graph and its node count.
fn end(s: cu::CUstream) -> driver::cu::Result<(graph::CUgraphExec, usize)> {
    let g = unsafe { graph::stream_end_capture(s) }?;
    let e = unsafe { graph::graph_instantiate(g) }.unwrap();
    Ok((e, unsafe { graph::graph_node_count(e) }.unwrap()))
}

/// `f`'s result on a new thread bound to device 0 (which does not capture).
fn on_another_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let c = cu::Context::new(0).unwrap();
        c.bind_to_thread().unwrap();
        f()
    })
    .join()
    .unwrap()
}

fn code(r: driver::cu::Result<impl std::fmt::Debug>) -> CUresult {
    r.expect_err("the call must be refused").code
}

#[test]
fn only_the_captured_streams_work_is_recorded_whichever_thread_enqueues_it() {
    let (_c, [a, b], [x, y]) = setup();
    unsafe { graph::stream_begin_capture(a) }.unwrap();
    fill(a, x, 1);
    // Another stream's work runs now, even from the capturing thread.
    fill(b, y, 2);
    // Another thread's work on the captured stream is captured.
    let (sa, sx) = (a as usize, x);
    on_another_thread(move || fill_n(sa as cu::CUstream, sx + 128, 3, 128));
    let (exec, nodes) = end(a).unwrap();
    assert_eq!(nodes, 2, "the two fills of the captured stream");
    assert_eq!(
        (first(a, x), first(b, y)),
        (0, 2),
        "captured work ran early"
    );
    unsafe { graph::graph_launch(exec, a) }.unwrap();
    let mut bytes = [0u8; 256];
    unsafe { cu::memcpy_dtoh_async(&mut bytes, x, a) }.unwrap();
    assert_eq!(
        (bytes[0], bytes[128]),
        (1, 3),
        "the replay ran both fills in order"
    );
}

#[test]
fn a_forked_stream_is_captured_and_must_be_joined_back() {
    let (_c, [a, b], [x, y]) = setup();
    unsafe { graph::stream_begin_capture(a) }.unwrap();
    order(a, b).unwrap();
    fill(b, y, 4);
    assert_eq!(
        code(end(a)),
        CUresult::CUDA_ERROR_STREAM_CAPTURE_UNJOINED,
        "ended with the fork's work unjoined"
    );
    // Joined back: both streams' work is in the graph.
    unsafe { graph::stream_begin_capture(a) }.unwrap();
    order(a, b).unwrap();
    fill(b, y, 5);
    order(b, a).unwrap();
    fill(a, x, 6);
    let (exec, nodes) = end(a).unwrap();
    assert_eq!(nodes, 2);
    assert_eq!(
        first(a, y),
        0,
        "the failed capture's work never ran, nor did this one's"
    );
    unsafe { graph::graph_launch(exec, a) }.unwrap();
    assert_eq!((first(a, x), first(a, y)), (6, 5));
    // After the capture, `b` is an ordinary stream again.
    order(a, b).unwrap();
    fill(b, y, 7);
    assert_eq!(first(b, y), 7);
}

#[test]
fn a_captured_event_cannot_be_queried_or_waited_for_by_the_host() {
    let (_c, [a, b], [x, _]) = setup();
    unsafe { graph::stream_begin_capture(a) }.unwrap();
    fill(a, x, 1);
    let e = event::create().unwrap();
    unsafe { event::record(e, a) }.unwrap();
    assert_eq!(
        code(unsafe { event::query(e) }),
        CUresult::CUDA_ERROR_CAPTURED_EVENT
    );
    // From a thread that is not capturing (this one's synchronisations are refused anyway).
    let ev = e as usize;
    let r = on_another_thread(move || {
        unsafe { event::synchronize(ev as event::CUevent) }.map_err(|e| e.code)
    });
    assert_eq!(r.unwrap_err(), CUresult::CUDA_ERROR_CAPTURED_EVENT);
    let (exec, _) = end(a).unwrap();
    // Still a captured event once the capture has ended, and after its graph ran: the record
    // is a dependency inside the graph, which a replay does not record again.
    unsafe { graph::graph_launch(exec, a) }.unwrap();
    let query = unsafe { event::query(e) }.unwrap_err();
    assert_eq!(query.code, CUresult::CUDA_ERROR_CAPTURED_EVENT);
    assert!(format!("{query:?}").contains("that has ended"), "{query:?}");
    assert_eq!(
        code(unsafe { event::synchronize(e) }),
        CUresult::CUDA_ERROR_CAPTURED_EVENT
    );
    assert_eq!(
        code(unsafe { event::stream_wait(b, e) }),
        CUresult::CUDA_ERROR_CAPTURED_EVENT
    );
    // Recorded outside a capture, it is an ordinary event again.
    unsafe { event::record(e, a) }.unwrap();
    assert!(unsafe { event::query(e) }.unwrap());
}

#[test]
fn a_captured_stream_waiting_on_an_outside_event_invalidates_the_capture() {
    let (_c, [a, b], [x, _]) = setup();
    unsafe { graph::stream_begin_capture(a) }.unwrap();
    fill(a, x, 1);
    assert_eq!(
        code(order(b, a)),
        CUresult::CUDA_ERROR_STREAM_CAPTURE_ISOLATION
    );
    assert_eq!(
        code(end(a)),
        CUresult::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
    );
    assert_eq!(first(a, x), 0, "an invalidated capture's work never runs");
}

#[test]
fn a_free_on_a_captured_stream_happens_when_the_graph_runs() {
    let (_c, [a, b], _) = setup();
    let p = unsafe { cu::malloc_async(b, 256) }.unwrap();
    fill(b, p, 9);
    order(b, a).unwrap();
    unsafe { graph::stream_begin_capture(a) }.unwrap();
    // From another thread, which the capturing thread's own refusals do not cover.
    let (sa, sp) = (a as usize, p);
    on_another_thread(move || unsafe { cu::free_async(sp, sa as cu::CUstream) }.unwrap());
    let (exec, nodes) = end(a).unwrap();
    assert_eq!(nodes, 1);
    assert_eq!(
        first(a, p),
        9,
        "the memory is still allocated until the graph runs"
    );
    unsafe { graph::graph_launch(exec, a) }.unwrap();
    let again = unsafe { graph::graph_launch(exec, a) };
    assert_eq!(
        code(again),
        CUresult::CUDA_ERROR_LAUNCH_FAILED,
        "a second replay frees the block twice"
    );
}

#[test]
fn an_nccl_collective_on_a_captured_stream_is_refused() {
    let (_c, [a, _], [x, _]) = setup();
    let mut comm: nccl::ncclComm_t = std::ptr::null_mut();
    unsafe { nccl::comm_init_all(&mut comm, 1, [0].as_ptr()) }.unwrap();
    let sum = |stream| unsafe {
        nccl::all_reduce(
            x as *const std::ffi::c_void,
            x as *mut std::ffi::c_void,
            64,
            nccl::ncclDataType_t::ncclFloat32,
            nccl::ncclRedOp_t::ncclSum,
            comm,
            stream,
        )
    };
    unsafe { graph::stream_begin_capture(a) }.unwrap();
    let e = sum(a).unwrap_err();
    assert!(format!("{e:?}").contains("on a captured stream"), "{e:?}");
    end(a).unwrap();
    // Outside a capture the same call runs.
    sum(a).unwrap();
    unsafe { nccl::comm_abort(comm) }.unwrap();
}
