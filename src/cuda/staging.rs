//! Uploads that never make the host wait: the tensor is copied into one of two page-locked
//! host buffers, and the device copies from there on the compute stream (a DMA the driver does
//! not stage). An event recorded after each copy says when its buffer may be refilled; with
//! two buffers the copy of step i has long finished when step i + 2 needs its buffer, so the
//! steady state polls an event and never waits (a wait, if one is needed, is counted as a host
//! synchronisation). Ordering on the compute stream makes the data visible to the step's
//! kernels without a second stream; a copy stream that overlaps the previous step is the next
//! refinement and changes nothing here but the stream and one event wait.

use super::device::{gpu, Gpu};
use super::driver::{cu, event, host};
use super::error::CudaCall;
use super::storage::CudaStorage;
use crate::tensor::{CpuStorage, Storage};
use crate::{Error, Result, Tensor};
use std::sync::Arc;

/// One pinned buffer and the event of the last copy out of it.
struct Slot {
    gpu: Arc<Gpu>,
    ptr: *mut u8,
    bytes: usize,
    event: event::CUevent,
}

impl Slot {
    fn new(gpu: &Arc<Gpu>, bytes: usize) -> Result<Self> {
        gpu.ctx.bind_to_thread().call("cuCtxSetCurrent")?;
        // Freed in Drop with the same size.
        let ptr = unsafe { host::malloc_host(bytes) }.call("cuMemHostAlloc(upload buffer)")?;
        let event = event::create().call("cuEventCreate(upload)")?;
        Ok(Slot {
            gpu: gpu.clone(),
            ptr,
            bytes,
            event,
        })
    }

    /// Waits (counted) only if the last copy out of this buffer is still running.
    fn wait_free(&self) -> Result<()> {
        // The event belongs to this slot.
        unsafe { event::wait_if_pending(self.event) }.call("cuEventSynchronize(upload)")
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Best effort: a failed wait or free at teardown has no one to report to.
        let _ = self.wait_free();
        unsafe {
            let _ = event::destroy(self.event);
            let _ = host::free_host(self.ptr, self.bytes);
        }
    }
}

/// Two pinned buffers used in turn (grown when a larger tensor comes).
#[derive(Default)]
pub struct PinnedUploader {
    slots: [Option<Slot>; 2],
    next: usize,
}

// The raw pointers are host buffers this uploader owns alone.
unsafe impl Send for PinnedUploader {}

impl PinnedUploader {
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of CPU tensor `t` (f32 or bf16) on GPU `ordinal`, enqueued without waiting.
    pub fn upload(&mut self, t: &Tensor, ordinal: usize) -> Result<Tensor> {
        let cpu = match t.storage() {
            Storage::Cpu(s) => s,
            Storage::Device(_) => return super::storage::upload(t, ordinal),
        };
        let g = gpu(ordinal)?;
        let dst = CudaStorage::alloc(&g, cpu.dtype(), cpu.len())?;
        self.copy_up(host_bytes(cpu)?, &g, dst.ptr())?;
        Ok(Tensor::from_storage(dst.into(), t.shape()))
    }

    /// CPU tensor `t` copied into the existing device tensor `dst` (same dtype and element
    /// count), enqueued without waiting: the fixed input buffer a captured step reads.
    pub fn upload_into(&mut self, t: &Tensor, dst: &Tensor) -> Result<()> {
        let Storage::Cpu(cpu) = t.storage() else {
            return Err(Error::device(
                "upload_into",
                "the source must be a CPU tensor",
            ));
        };
        let d = super::storage::storage(dst, "upload_into")?;
        if d.dtype() != cpu.dtype() || d.len() != cpu.len() {
            return Err(Error::shape(
                "upload_into",
                format!(
                    "the device buffer holds {} {} elements, the batch {} {}",
                    d.len(),
                    d.dtype().name(),
                    cpu.len(),
                    cpu.dtype().name()
                ),
            ));
        }
        let g = d.gpu().clone();
        self.copy_up(host_bytes(cpu)?, &g, d.ptr())
    }

    /// `host` through the next pinned buffer to device address `dst`.
    fn copy_up(&mut self, host: &[u8], g: &Arc<Gpu>, dst: cu::CUdeviceptr) -> Result<()> {
        let i = self.next;
        self.next ^= 1;
        let fits =
            matches!(&self.slots[i], Some(s) if s.bytes >= host.len() && Arc::ptr_eq(&s.gpu, g));
        if !fits {
            self.slots[i] = None; // waits for its copy and frees it
            self.slots[i] = Some(Slot::new(g, host.len())?);
        }
        let slot = self.slots[i].as_ref().expect("filled above");
        slot.wait_free()?;
        // The buffer holds at least host.len() bytes and no copy reads it any more.
        unsafe { std::ptr::copy_nonoverlapping(host.as_ptr(), slot.ptr, host.len()) };
        let s = g.cu_stream();
        // The pinned buffer stays untouched until the event recorded after the copy completes.
        unsafe {
            let src = std::slice::from_raw_parts(slot.ptr as *const u8, host.len());
            cu::memcpy_htod_async(dst, src, s).call("cuMemcpyHtoDAsync(pinned)")?;
            event::record(slot.event, s).call("cuEventRecord(upload)")?;
        }
        Ok(())
    }
}

/// A CPU tensor's elements as bytes (f32 or bf16).
fn host_bytes(cpu: &CpuStorage) -> Result<&[u8]> {
    match cpu {
        // Plain old data viewed as its bytes.
        CpuStorage::F32(v) => Ok(unsafe {
            std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(&v[..]))
        }),
        CpuStorage::BF16(v) => Ok(unsafe {
            std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(&v[..]))
        }),
        CpuStorage::F64(_) => Err(Error::dtype(
            "upload",
            "f64 cannot be uploaded (convert first)",
        )),
    }
}
