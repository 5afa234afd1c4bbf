//! Stream capture and graphs on the emulated device. While a thread captures, the work it
//! enqueues is recorded instead of run: a kernel with a copy of its argument values, a memset or
//! device copy with its range, a library call with its descriptors and scalars resolved at
//! capture (as the real libraries bake them into the graph). Launching the instantiated graph
//! replays the records in order. Capture is per thread (CU_STREAM_CAPTURE_MODE_THREAD_LOCAL):
//! other threads' work runs as usual.

use super::registry::Registry;
use std::cell::RefCell;

/// One recorded piece of work; its error names the call it stands for.
pub type Node = Box<dyn FnMut() -> Result<(), String>>;

/// The recorded work of one capture, in stream order.
pub struct Nodes(Vec<Node>);

// A graph's nodes hold device addresses and copied argument values only; the registry's lock
// serialises their use.
unsafe impl Send for Nodes {}

static GRAPHS: Registry<Nodes> = Registry::new();

thread_local! {
    static RECORDING: RefCell<Option<Vec<Node>>> = const { RefCell::new(None) };
}

/// Whether this thread is capturing.
pub fn capturing() -> bool {
    RECORDING.with(|r| r.borrow().is_some())
}

/// Starts recording this thread's work.
pub fn begin() -> Result<(), String> {
    RECORDING.with(|r| {
        let mut r = r.borrow_mut();
        if r.is_some() {
            return Err("cuStreamBeginCapture: this thread is already capturing".into());
        }
        *r = Some(Vec::new());
        Ok(())
    })
}

/// Ends the capture; the handle of the recorded graph.
pub fn end() -> Result<usize, String> {
    let nodes = RECORDING
        .with(|r| r.borrow_mut().take())
        .ok_or("cuStreamEndCapture: this thread is not capturing")?;
    GRAPHS.insert(Nodes(nodes))
}

/// Runs `work` now, or records it when this thread captures.
pub fn run_or_record(work: Node) -> Result<(), String> {
    let leftover = RECORDING.with(|r| match r.borrow_mut().as_mut() {
        Some(nodes) => {
            nodes.push(work);
            None
        }
        None => Some(work),
    });
    match leftover {
        Some(mut work) => work(),
        None => Ok(()),
    }
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
        return Err("cuGraphLaunch while this thread captures (nested graphs are not used)".into());
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
