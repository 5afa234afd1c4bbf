//! A step captured as a CUDA graph, and the graph-private memory pool that keeps every address
//! the graph uses valid between replays.
//!
//! While a pool is active on a device, every [`DeviceBuffer`](super::alloc::DeviceBuffer)
//! allocation on it is served from the pool's free blocks of exactly that size, or (outside a
//! capture only) by a new block the pool then owns; a block freed while the pool lives goes back
//! to the pool, never to the driver. A deterministic step run eagerly with the pool active
//! leaves the pool holding every block the same step needs, so the same step captured next
//! allocates nothing from the driver (an allocation the pool cannot serve during capture is
//! refused by the driver floor, naming it). A buffer from outside the pool dropped during a
//! capture is kept until the graph goes: the graph may read it on every replay.

use super::device::Gpu;
use super::driver::{cu, graph as g};
use super::error::CudaCall;
use crate::Result;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Blocks {
    /// Free blocks by size in bytes.
    free: HashMap<usize, Vec<cu::CUdeviceptr>>,
    /// Blocks from outside the pool released during a capture (freed with the pool).
    kept: Vec<cu::CUdeviceptr>,
    /// Blocks the pool took from the driver.
    taken: u64,
}

/// The memory of one captured graph.
pub struct GraphPool {
    gpu: Arc<Gpu>,
    blocks: Mutex<Blocks>,
}

impl std::fmt::Debug for GraphPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GraphPool(cuda:{})", self.gpu.ordinal)
    }
}

impl GraphPool {
    pub fn new(gpu: &Arc<Gpu>) -> Arc<Self> {
        Arc::new(GraphPool {
            gpu: gpu.clone(),
            blocks: Mutex::new(Blocks::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Blocks> {
        // A panic while holding the lock leaves plain lists behind: still usable.
        self.blocks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A block of `bytes` (already at least 1): a free one, else a new one from the driver
    /// (refused during a capture).
    pub(crate) fn take(
        &self,
        bytes: usize,
    ) -> std::result::Result<cu::CUdeviceptr, cu::DriverError> {
        if let Some(p) = self.lock().free.get_mut(&bytes).and_then(|v| v.pop()) {
            return Ok(p);
        }
        if g::capturing() {
            return Err(cu::DriverError::new(
                cu::CUresult::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                format!(
                    "cuMemAllocAsync({bytes} bytes) during stream capture: the graph pool has \
                     no free block of that size (the captured step allocates differently from \
                     the eager steps that filled the pool)"
                ),
            ));
        }
        // SAFETY: the stream of a live context; the block is freed in Drop.
        let p = unsafe { cu::malloc_async(self.gpu.cu_stream(), bytes)? };
        self.lock().taken += 1;
        Ok(p)
    }

    /// A block of this pool back in its free list.
    pub(crate) fn give_back(&self, ptr: cu::CUdeviceptr, bytes: usize) {
        self.lock().free.entry(bytes).or_default().push(ptr);
    }

    /// A block from outside the pool, released during a capture: kept while the graph lives.
    pub(crate) fn keep(&self, ptr: cu::CUdeviceptr) {
        self.lock().kept.push(ptr);
    }

    /// How many blocks the pool has taken from the driver.
    pub fn blocks_taken(&self) -> u64 {
        self.lock().taken
    }
}

impl Drop for GraphPool {
    fn drop(&mut self) {
        let _ = self.gpu.ctx.bind_to_thread();
        let s = self.gpu.cu_stream();
        let b = std::mem::take(&mut *self.lock());
        for p in b.free.into_values().flatten().chain(b.kept) {
            // SAFETY: blocks of this pool or handed to it; no graph that uses them is left
            // (a graph holds its pool).
            let _ = unsafe { cu::free_async(p, s) };
        }
    }
}

/// Makes `pool` serve `gpu`'s allocations until dropped.
struct Active<'a>(&'a Arc<Gpu>);

impl<'a> Active<'a> {
    fn new(gpu: &'a Arc<Gpu>, pool: &Arc<GraphPool>) -> Result<Self> {
        let mut slot = gpu.graph_pool.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_some() {
            return Err(crate::Error::device(
                "cuda graph",
                format!("cuda:{} already has an active graph pool", gpu.ordinal),
            ));
        }
        *slot = Some(pool.clone());
        Ok(Active(gpu))
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        *self.0.graph_pool.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Runs `f` eagerly with `pool` serving the device's allocations (what fills the pool).
pub fn with_pool<R>(
    gpu: &Arc<Gpu>,
    pool: &Arc<GraphPool>,
    f: impl FnOnce() -> Result<R>,
) -> Result<R> {
    let _active = Active::new(gpu, pool)?;
    f()
}

/// An instantiated graph and the pool its addresses live in.
pub struct CudaGraph {
    gpu: Arc<Gpu>,
    graph: g::CUgraph,
    exec: g::CUgraphExec,
    pool: Arc<GraphPool>,
}

// The handles are used from one thread at a time (the owner's).
unsafe impl Send for CudaGraph {}

impl std::fmt::Debug for CudaGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaGraph(cuda:{})", self.gpu.ordinal)
    }
}

impl CudaGraph {
    /// Captures what `f` enqueues on `gpu`'s stream, with `pool` serving its allocations; the
    /// work is recorded, not run (launch the graph to run it). A failure inside `f`, or a
    /// refused call, ends the capture and returns the error.
    pub fn capture<R>(
        gpu: &Arc<Gpu>,
        pool: &Arc<GraphPool>,
        f: impl FnOnce() -> Result<R>,
    ) -> Result<(CudaGraph, R)> {
        let active = Active::new(gpu, pool)?;
        gpu.ctx.bind_to_thread().call("cuCtxSetCurrent")?;
        let s = gpu.cu_stream();
        // SAFETY: the device's own stream; the capture ends below on every path.
        unsafe { g::stream_begin_capture(s) }.call("cuStreamBeginCapture")?;
        let r = f();
        // SAFETY: this thread captures `s`.
        let ended = unsafe { g::stream_end_capture(s) }.call("cuStreamEndCapture");
        drop(active);
        let graph = match (r, ended) {
            (Ok(r), Ok(graph)) => (graph, r),
            (Err(e), Ok(graph)) => {
                // SAFETY: the graph just captured, used by nothing.
                let _ = unsafe { g::graph_destroy(graph) };
                return Err(e);
            }
            (Err(e), Err(_)) | (Ok(_), Err(e)) => return Err(e),
        };
        let (graph, r) = graph;
        // SAFETY: a graph just captured.
        let exec = match unsafe { g::graph_instantiate(graph) }.call("cuGraphInstantiate") {
            Ok(e) => e,
            Err(e) => {
                let _ = unsafe { g::graph_destroy(graph) };
                return Err(e);
            }
        };
        Ok((
            CudaGraph {
                gpu: gpu.clone(),
                graph,
                exec,
                pool: pool.clone(),
            },
            r,
        ))
    }

    /// Runs the captured work once (one launch; the host does not wait).
    pub fn launch(&self) -> Result<()> {
        self.gpu.ctx.bind_to_thread().call("cuCtxSetCurrent")?;
        // SAFETY: the pool this graph holds keeps every address it uses allocated.
        unsafe { g::graph_launch(self.exec, self.gpu.cu_stream()) }.call("cuGraphLaunch")
    }

    /// The graph's node count where the emulated device knows it.
    pub fn nodes(&self) -> Option<usize> {
        // SAFETY: a live executable graph.
        unsafe { g::graph_node_count(self.exec) }
    }

    pub fn pool(&self) -> &Arc<GraphPool> {
        &self.pool
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        let _ = self.gpu.ctx.bind_to_thread();
        // A pending launch must finish before its graph and memory go.
        let _ = self.gpu.synchronize();
        // SAFETY: handles of this graph, used by nothing else.
        unsafe {
            let _ = g::graph_exec_destroy(self.exec);
            let _ = g::graph_destroy(self.graph);
        }
    }
}
