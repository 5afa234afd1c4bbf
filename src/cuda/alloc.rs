//! Device memory: stream-ordered allocations (cuMemAllocAsync) from the device's default memory
//! pool, whose release threshold is raised to "never" when the device is opened. Freed blocks
//! stay in the pool and are handed out again, so a steady-state training step does no
//! cudaMalloc; all work runs on the device's one stream, so stream order makes reuse safe.
//! While a graph pool is active on the device (`super::graph`), allocations come from it and
//! go back to it.

use super::device::Gpu;
use super::driver::cu;
use super::error::CudaCall;
use super::graph::GraphPool;
use crate::Result;
use cudarc::driver::sys;
use std::sync::Arc;

/// One allocation, freed (back into the pool) on drop.
pub struct DeviceBuffer {
    ptr: cu::CUdeviceptr,
    bytes: usize,
    gpu: Arc<Gpu>,
    /// The graph pool the block came from (it goes back there).
    pool: Option<Arc<GraphPool>>,
}

impl DeviceBuffer {
    pub fn alloc(gpu: &Arc<Gpu>, bytes: usize) -> Result<Self> {
        Self::alloc_from(gpu, bytes, gpu.active_graph_pool())
    }

    /// From the device's pool even while a graph pool is active: for buffers the device keeps
    /// for good (a library's workspace), which must not hold a graph pool alive.
    pub fn alloc_lasting(gpu: &Arc<Gpu>, bytes: usize) -> Result<Self> {
        Self::alloc_from(gpu, bytes, None)
    }

    fn alloc_from(gpu: &Arc<Gpu>, bytes: usize, pool: Option<Arc<GraphPool>>) -> Result<Self> {
        // Zero-byte allocations are errors in CUDA; a tiny one keeps every pointer valid.
        let got = match &pool {
            Some(p) => p.take(bytes.max(1)),
            None => unsafe { cu::malloc_async(gpu.cu_stream(), bytes.max(1)) }.or_else(|e| {
                // The device's pool keeps what it freed (module doc): hand its unused memory
                // back once the stream has run, and try again before giving up (as PyTorch's
                // allocator empties its cache). Not while a graph is captured: no waiting there.
                if !e.is_out_of_memory() || crate::cuda::driver::graph::capturing() {
                    return Err(e);
                }
                gpu.ctx.synchronize()?;
                cu::pool_trim(gpu.ctx.cu_device(), 0)?;
                unsafe { cu::malloc_async(gpu.cu_stream(), bytes.max(1)) }
            }),
        };
        let ptr = match got {
            Ok(p) => p,
            Err(e) if e.is_out_of_memory() => {
                return Err(crate::Error::OutOfMemory(format!(
                    "cuda:{} could not allocate {:.1} MiB more (tensors hold {:.2} GiB); \
                     run `simclr bench` with the same model and batch to see what fits, or use \
                     --micro-batch",
                    gpu.ordinal,
                    bytes as f64 / (1u64 << 20) as f64,
                    crate::tensor::memory::current_bytes(crate::Device::Cuda(gpu.ordinal)) as f64
                        / (1u64 << 30) as f64
                )))
            }
            Err(e) => return Err(e).call("cuMemAllocAsync"),
        };
        Ok(DeviceBuffer {
            ptr,
            bytes,
            gpu: gpu.clone(),
            pool,
        })
    }

    pub fn zeroed(gpu: &Arc<Gpu>, bytes: usize) -> Result<Self> {
        let b = Self::alloc(gpu, bytes)?;
        unsafe { cu::memset_d8_async(b.ptr, 0, bytes.max(1), gpu.cu_stream()) }
            .call("cuMemsetD8Async")?;
        Ok(b)
    }

    pub fn ptr(&self) -> cu::CUdeviceptr {
        self.ptr
    }
    pub fn bytes(&self) -> usize {
        self.bytes
    }
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        // Errors here mean the context is already broken; the next call will report it.
        if let Some(p) = &self.pool {
            return p.give_back(self.ptr, self.bytes.max(1));
        }
        if crate::cuda::driver::graph::capturing() {
            // A captured step may have read this block: it lives as long as the graph.
            if let Some(p) = self.gpu.active_graph_pool() {
                return p.keep(self.ptr);
            }
        }
        let _ = self.gpu.ctx.bind_to_thread();
        let _ = unsafe { cu::free_async(self.ptr, self.gpu.cu_stream()) };
    }
}

/// Makes the device's default pool keep freed memory instead of returning it to the driver.
pub(crate) fn keep_freed_memory(cu_device: cu::CUdevice) -> Result<()> {
    cu::pool_set_attribute(
        cu_device,
        sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
        u64::MAX,
    )
    .call("cuMemPoolSetAttribute(RELEASE_THRESHOLD)")
}
