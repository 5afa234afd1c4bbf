//! Device memory as the driver sees it: the stream-ordered pool's high-water mark (tensors plus
//! cuDNN/cuBLAS workspaces and scratch) and the device's free and total bytes. Tensor bytes alone
//! are counted on every backend by `crate::tensor::memory`.

use super::device::gpu;
use super::driver::cu;
use super::error::CudaCall;
use crate::Result;
use cudarc::driver::sys;

/// What the device reports about its memory.
#[derive(Clone, Copy, Debug)]
pub struct DeviceMemory {
    /// Bytes the driver can still hand out (outside our pool).
    pub free: usize,
    pub total: usize,
    /// Bytes in use from the pool now, and at most since the last [`reset_pool_peak`].
    pub pool_used: usize,
    pub pool_used_peak: usize,
    /// Bytes the pool holds from the driver (used or cached for reuse).
    pub pool_reserved: usize,
}

fn pool_attr(ordinal: usize, attr: sys::CUmemPool_attribute) -> Result<u64> {
    let g = gpu(ordinal)?;
    g.ctx.bind_to_thread().call("cuCtxSetCurrent")?;
    cu::pool_get_attribute(g.ctx.cu_device(), attr).call("cuMemPoolGetAttribute")
}

/// Reads the device's memory counters (synchronises its stream first so frees are counted).
pub fn device_memory(ordinal: usize) -> Result<DeviceMemory> {
    let g = gpu(ordinal)?;
    g.synchronize()?;
    let (free, total) = cu::mem_get_info().call("cuMemGetInfo")?;
    use sys::CUmemPool_attribute as A;
    Ok(DeviceMemory {
        free,
        total,
        pool_used: pool_attr(ordinal, A::CU_MEMPOOL_ATTR_USED_MEM_CURRENT)? as usize,
        pool_used_peak: pool_attr(ordinal, A::CU_MEMPOOL_ATTR_USED_MEM_HIGH)? as usize,
        pool_reserved: pool_attr(ordinal, A::CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT)? as usize,
    })
}

/// Restarts the pool's high-water mark (the driver only accepts zero, meaning "now").
pub fn reset_pool_peak(ordinal: usize) -> Result<()> {
    let g = gpu(ordinal)?;
    g.synchronize()?;
    g.ctx.bind_to_thread().call("cuCtxSetCurrent")?;
    // The driver only accepts zero here.
    cu::pool_set_attribute(
        g.ctx.cu_device(),
        sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH,
        0,
    )
    .call("cuMemPoolSetAttribute(USED_MEM_HIGH)")
}
