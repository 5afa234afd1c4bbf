//! CUDA graphs at the driver floor: stream capture (cuStreamBeginCapture / EndCapture),
//! instantiation, launch and destruction, on the GPU or the emulated device (which records the
//! captured work and replays it, `crate::cuda::emu::graph`).
//!
//! While this thread captures, an allocation, a host synchronisation, a download or an upload
//! is refused here with an error naming the call: a graph replays without the host, so a step
//! that allocates, waits or reads back cannot be captured (the caller falls back to eager).

use super::counters::{self as c, bump};
use super::cu::{CUresult, CUstream, DriverError, Result};
use super::route;
use cudarc::driver::sys;
use std::cell::Cell;

/// A captured graph and its executable form (the driver's handles; the emulator's live-graph
/// addresses in emulated mode).
pub type CUgraph = sys::CUgraph;
pub type CUgraphExec = sys::CUgraphExec;

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is capturing a stream.
pub fn capturing() -> bool {
    CAPTURING.with(|c| c.get())
}

/// The error for `call` made during a capture.
pub(crate) fn refuse_during_capture(call: &str) -> Result<()> {
    if !capturing() {
        return Ok(());
    }
    Err(DriverError::new(
        CUresult::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
        format!(
            "{call} during stream capture: allocations, host synchronisations, uploads and \
             downloads are refused while a step is captured as a CUDA graph (the graph replays \
             without the host)"
        ),
    ))
}

#[cfg(feature = "cuda-emu")]
fn emu<T>(r: std::result::Result<T, String>) -> Result<T> {
    r.map_err(|m| DriverError::new(CUresult::CUDA_ERROR_INVALID_VALUE, m))
}

/// Starts capturing `stream` (the work enqueued on it, and on the streams it forks into the
/// capture with events). This thread's host synchronisations, allocations and transfers are
/// refused until the capture ends (CU_STREAM_CAPTURE_MODE_THREAD_LOCAL).
///
/// # Safety
/// A stream of a live context.
pub unsafe fn stream_begin_capture(stream: CUstream) -> Result<()> {
    if capturing() {
        return Err(DriverError::new(
            CUresult::CUDA_ERROR_ILLEGAL_STATE,
            "cuStreamBeginCapture: this thread is already capturing",
        ));
    }
    route!(
        real => sys::cuStreamBeginCapture_v2(
            stream,
            sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL,
        )
        .result()
        .map_err(DriverError::from)?,
        emu => crate::cuda::emu::graph::begin(stream)?,
    );
    CAPTURING.with(|c| c.set(true));
    Ok(())
}

/// Ends the capture of `stream`; the captured graph. The capture ends even when this fails.
///
/// # Safety
/// `stream` is being captured by this thread.
pub unsafe fn stream_end_capture(stream: CUstream) -> Result<CUgraph> {
    CAPTURING.with(|c| c.set(false));
    route!(
        real => {
            let mut g: CUgraph = std::ptr::null_mut();
            sys::cuStreamEndCapture(stream, &mut g).result().map_err(DriverError::from)?;
            Ok(g)
        },
        emu => crate::cuda::emu::graph::end(stream).map(|h| h as CUgraph),
    )
}

/// # Safety
/// `g` came from [`stream_end_capture`] and was not destroyed.
pub unsafe fn graph_instantiate(g: CUgraph) -> Result<CUgraphExec> {
    route!(
        real => {
            let mut e: CUgraphExec = std::ptr::null_mut();
            sys::cuGraphInstantiateWithFlags(&mut e, g, 0)
                .result()
                .map_err(DriverError::from)?;
            Ok(e)
        },
        emu => emu(crate::cuda::emu::graph::instantiate(g as usize)).map(|h| h as CUgraphExec),
    )
}

/// Launches the executable graph on `stream` (one launch, counted as such).
///
/// # Safety
/// `e` came from [`graph_instantiate`]; every address its work uses is still allocated.
pub unsafe fn graph_launch(e: CUgraphExec, stream: CUstream) -> Result<()> {
    bump(&c::GRAPH_LAUNCHES, 1);
    route!(
        real => sys::cuGraphLaunch(e, stream).result().map_err(DriverError::from),
        emu => {
            let _op = crate::cuda::emu::order::op(stream, c"cuGraphLaunch");
            crate::cuda::emu::graph::launch(e as usize)
                .map_err(|m| DriverError::new(CUresult::CUDA_ERROR_LAUNCH_FAILED, m))
        },
    )
}

/// How many nodes (kernels, copies, library calls) an executable graph holds; `None` on a GPU
/// (where the driver keeps them).
///
/// # Safety
/// `e` came from [`graph_instantiate`].
pub unsafe fn graph_node_count(e: CUgraphExec) -> Option<usize> {
    route!(
        real => {
            let _ = e;
            None
        },
        emu => crate::cuda::emu::graph::node_count(e as usize).ok(),
    )
}

/// # Safety
/// `e` came from [`graph_instantiate`] and no launch of it is pending.
pub unsafe fn graph_exec_destroy(e: CUgraphExec) -> Result<()> {
    route!(
        real => sys::cuGraphExecDestroy(e).result().map_err(DriverError::from),
        emu => emu(crate::cuda::emu::graph::destroy(e as usize)),
    )
}

/// # Safety
/// `g` came from [`stream_end_capture`].
pub unsafe fn graph_destroy(g: CUgraph) -> Result<()> {
    route!(
        real => sys::cuGraphDestroy(g).result().map_err(DriverError::from),
        emu => emu(crate::cuda::emu::graph::destroy(g as usize)),
    )
}
