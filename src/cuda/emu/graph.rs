//! Stream capture and graphs on the emulated device. Capture belongs to streams, as on a GPU:
//! `begin` puts its stream (the origin) in capture mode; work enqueued on a captured stream, by
//! any thread, is recorded instead of run (a kernel with a copy of its argument values, a
//! memset, copy or free with its range, a library call with its descriptors and scalars
//! resolved at capture, as the real libraries bake them into the graph); work on any other
//! stream runs at once. Another stream joins the capture by waiting on an event recorded on a
//! captured stream (a fork), and must be joined back into the origin (the origin waits on an
//! event recorded after its last captured work) before `end`, or `end` fails as
//! CUDA_ERROR_STREAM_CAPTURE_UNJOINED. As CUDA documents: an event last recorded on a captured
//! stream cannot be queried or synchronised (CUDA_ERROR_CAPTURED_EVENT), and a captured stream
//! cannot wait on an event recorded outside the capture (CUDA_ERROR_STREAM_CAPTURE_ISOLATION,
//! which also invalidates the capture: `end` fails as CUDA_ERROR_STREAM_CAPTURE_INVALIDATED).
//! Launching the instantiated graph replays the records in order.

use super::registry::Registry;
use crate::cuda::driver::cu::{CUresult, CUstream, DriverError};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// One recorded piece of work; its error names the call it stands for.
pub type Node = Box<dyn FnMut() -> Result<(), String>>;

/// The recorded work of one capture, in stream order.
pub struct Nodes(Vec<Node>);

// A graph's nodes hold device addresses and copied argument values only; the registry's lock
// serialises their use.
unsafe impl Send for Nodes {}

static GRAPHS: Registry<Nodes> = Registry::new();

/// One capture in progress.
struct Capture {
    /// The captured streams (the origin first), each with whether it recorded work.
    streams: HashMap<usize, bool>,
    nodes: Nodes,
    /// The first operation that invalidated the capture.
    invalid: Option<String>,
}

/// The captures in progress, by origin stream.
static CAPTURES: Mutex<Vec<(usize, Capture)>> = Mutex::new(Vec::new());

fn captures() -> MutexGuard<'static, Vec<(usize, Capture)>> {
    CAPTURES.lock().unwrap_or_else(|p| p.into_inner())
}

fn err(code: CUresult, m: impl Into<String>) -> DriverError {
    DriverError::new(code, m.into())
}

/// The capture `stream` belongs to, if any: its index in `c`.
fn capture_of(c: &[(usize, Capture)], stream: usize) -> Option<usize> {
    c.iter().position(|(_, k)| k.streams.contains_key(&stream))
}

/// Whether a capture whose origin is `origin` is in progress.
pub fn in_progress(origin: usize) -> bool {
    captures().iter().any(|(o, _)| *o == origin)
}

/// The origin of the capture `stream` belongs to, if it is captured.
pub fn origin_of(stream: CUstream) -> Option<usize> {
    let c = captures();
    capture_of(&c, stream as usize).map(|i| c[i].0)
}

/// Whether the current operation (`super::order::op`) is on a captured stream: its work is
/// recorded.
pub fn capturing() -> bool {
    super::order::current_stream().is_some_and(|s| origin_of(s).is_some())
}

/// Starts capturing `stream`.
pub fn begin(stream: CUstream) -> Result<(), DriverError> {
    if stream.is_null() {
        return Err(err(
            CUresult::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
            "cuStreamBeginCapture: the legacy null stream cannot be captured",
        ));
    }
    let mut c = captures();
    if capture_of(&c, stream as usize).is_some() {
        return Err(err(
            CUresult::CUDA_ERROR_ILLEGAL_STATE,
            "cuStreamBeginCapture: the stream is already capturing",
        ));
    }
    let capture = Capture {
        streams: HashMap::from([(stream as usize, false)]),
        nodes: Nodes(Vec::new()),
        invalid: None,
    };
    c.push((stream as usize, capture));
    Ok(())
}

/// Ends the capture whose origin is `stream` (it ends even when this fails); the handle of the
/// recorded graph.
pub fn end(stream: CUstream) -> Result<usize, DriverError> {
    let capture = {
        let mut c = captures();
        let Some(i) = c.iter().position(|(o, _)| *o == stream as usize) else {
            let code = if capture_of(&c, stream as usize).is_some() {
                CUresult::CUDA_ERROR_STREAM_CAPTURE_UNMATCHED
            } else {
                CUresult::CUDA_ERROR_ILLEGAL_STATE
            };
            return Err(err(
                code,
                "cuStreamEndCapture: the stream is not the origin of a capture",
            ));
        };
        c.remove(i).1
    };
    if let Some(why) = capture.invalid {
        return Err(err(
            CUresult::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
            format!("cuStreamEndCapture: the capture was invalidated: {why}"),
        ));
    }
    let unjoined: Vec<usize> = capture
        .streams
        .iter()
        .filter(|&(&s, &worked)| {
            s != stream as usize && worked && !super::order::covers(stream, s as CUstream)
        })
        .map(|(&s, _)| s)
        .collect();
    if !unjoined.is_empty() {
        return Err(err(
            CUresult::CUDA_ERROR_STREAM_CAPTURE_UNJOINED,
            format!(
                "cuStreamEndCapture: {} forked stream(s) ({}) did work the origin stream never \
                 waited for (record an event on each and make the origin wait on it)",
                unjoined.len(),
                unjoined
                    .iter()
                    .map(|s| format!("{s:#x}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    GRAPHS
        .insert(capture.nodes)
        .map_err(|m| err(CUresult::CUDA_ERROR_INVALID_VALUE, m))
}

/// `stream` waits on an event last recorded in the capture whose origin is `recorded_in`
/// (None: never, or outside any capture): a captured event forks `stream` into its capture; a captured stream waiting on an
/// event from outside its capture is refused and invalidates the capture.
pub fn waits(stream: CUstream, recorded_in: Option<usize>) -> Result<(), DriverError> {
    let mut c = captures();
    let mine = capture_of(&c, stream as usize);
    let theirs = recorded_in.and_then(|o| c.iter().position(|(origin, _)| *origin == o));
    match (mine, theirs) {
        (None, None) => Ok(()),
        (None, Some(t)) => {
            c[t].1.streams.insert(stream as usize, false);
            Ok(())
        }
        (Some(m), t) if t == Some(m) => Ok(()),
        (Some(m), _) => {
            let why = "cuStreamWaitEvent: a captured stream waits on an event recorded outside \
                       its capture"
                .to_string();
            c[m].1.invalid.get_or_insert(why.clone());
            Err(err(CUresult::CUDA_ERROR_STREAM_CAPTURE_ISOLATION, why))
        }
    }
}

/// Runs `work` now, or records it when the current operation's stream is captured.
pub fn run_or_record(mut work: Node) -> Result<(), String> {
    if let Some(s) = super::order::current_stream() {
        let mut c = captures();
        if let Some(i) = capture_of(&c, s as usize) {
            let k = &mut c[i].1;
            k.streams.insert(s as usize, true);
            k.nodes.0.push(work);
            return Ok(());
        }
    }
    work()
}

/// An executable graph made of `g`'s records (they move to it; `g` stays, empty, until
/// destroyed).
pub fn instantiate(g: usize) -> Result<usize, String> {
    let nodes = GRAPHS
        .with(g, |n| std::mem::take(&mut n.0))?
        .ok_or_else(|| format!("cuGraphInstantiate: {g:#x} is not a live graph"))?;
    GRAPHS.insert(Nodes(nodes))
}

/// How many nodes graph `g` holds.
pub fn node_count(g: usize) -> Result<usize, String> {
    GRAPHS
        .with(g, |n| n.0.len())?
        .ok_or_else(|| format!("{g:#x} is not a live graph"))
}

/// Replays graph `g`'s records in order; the first failure stops it.
pub fn launch(g: usize) -> Result<(), String> {
    if capturing() {
        return Err("cuGraphLaunch into a captured stream (nested graphs are not used)".into());
    }
    GRAPHS
        .with(g, |n| n.0.iter_mut().try_for_each(|node| node()))?
        .ok_or_else(|| format!("cuGraphLaunch: {g:#x} is not a live graph"))?
}

pub fn destroy(g: usize) -> Result<(), String> {
    if GRAPHS.remove(g)? {
        Ok(())
    } else {
        Err(format!("{g:#x} is not a live graph"))
    }
}

/// A host scalar of `bytes` (4 or 8) bytes read now, for a call recorded during capture (the
/// libraries read α and β when the call is captured); `None` for a null pointer.
///
/// # Safety
/// `p` is null or points at `bytes` readable bytes.
pub unsafe fn host_scalar(p: *const std::ffi::c_void, bytes: usize) -> Option<u64> {
    if p.is_null() {
        return None;
    }
    let mut v = 0u64;
    std::ptr::copy_nonoverlapping(p as *const u8, &mut v as *mut u64 as *mut u8, bytes.min(8));
    Some(v)
}

/// The pointer a replayed call reads a scalar kept by [`host_scalar`] from.
pub fn scalar_ptr(v: &Option<u64>) -> *const std::ffi::c_void {
    v.as_ref().map_or(std::ptr::null(), |v| {
        v as *const u64 as *const std::ffi::c_void
    })
}
