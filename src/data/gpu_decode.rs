//! JPEGs decoded on the GPU by nvJPEG (`--decode-on gpu`), straight into the augmentation's
//! sources: one `nvjpegDecodeBatched` per step on the compute stream, full size, interleaved
//! RGB. The hardware backend (the JPEG engines of A100/H100-class GPUs) is used when the GPU
//! has one, else the default backend (Huffman on the CPU, the rest on the GPU).

use crate::cuda::device::{gpu, Gpu};
use crate::cuda::driver::cu::CUstream;
use crate::cuda::driver::event::{self, CUevent};
use crate::cuda::driver::nvjpeg::{self as nj, NvjpegHandle, NvjpegImage, NvjpegState};
use crate::cuda::error::CudaCall;
use crate::{Error, Result};
use std::sync::Arc;

/// One JPEG to decode and the device address its `height` rows of `3·width` bytes go to.
pub struct JpegTarget<'a> {
    pub bytes: &'a [u8],
    pub dst: u64,
    pub width: usize,
}

/// An nvJPEG handle and decode state on one GPU.
pub struct GpuJpeg {
    gpu: Arc<Gpu>,
    handle: NvjpegHandle,
    state: NvjpegState,
    backend: &'static str,
    /// The batch size the state was initialised for (0: none yet).
    batch: usize,
    /// Recorded after each decode: the state (its pinned staging buffers) is not handed to
    /// nvJPEG again, nor destroyed, before the decode that uses it has run, as NVIDIA's own
    /// integrations (DALI, nvImageCodec) wait.
    decoded: CUevent,
}

// The handle and state are used by one thread at a time, through `&mut self`.
unsafe impl Send for GpuJpeg {}

fn failed(call: &str, e: nj::NvjpegError) -> Error {
    Error::device("nvjpeg", format!("{call}: {e:?}"))
}

impl GpuJpeg {
    pub fn new(ordinal: usize) -> Result<Self> {
        nj::available().map_err(|why| Error::device("nvjpeg", why))?;
        let gpu = gpu(ordinal)?;
        gpu.ctx.bind_to_thread().call("cuCtxSetCurrent")?;
        let (handle, backend) = match nj::create(nj::BACKEND_HARDWARE) {
            Ok(h) => (h, "hardware"),
            Err(_) => (
                nj::create(nj::BACKEND_DEFAULT).map_err(|e| failed("nvjpegCreateEx", e))?,
                "default",
            ),
        };
        let state = match nj::state_create(handle) {
            Ok(s) => s,
            Err(e) => {
                // The handle is ours alone.
                let _ = unsafe { nj::destroy(handle) };
                return Err(failed("nvjpegJpegStateCreate", e));
            }
        };
        let decoded = match event::create() {
            Ok(e) => e,
            Err(e) => {
                // The state and handle are ours alone.
                unsafe {
                    let _ = nj::state_destroy(state);
                    let _ = nj::destroy(handle);
                }
                return Err(e).call("cuEventCreate(nvjpeg)");
            }
        };
        Ok(GpuJpeg {
            gpu,
            handle,
            state,
            backend,
            batch: 0,
            decoded,
        })
    }

    /// Waits (counted) only if the last decode has not run yet; a step behind, it usually has.
    fn wait_decoded(&self) -> Result<()> {
        // The event belongs to this decoder; before the first decode it is complete.
        unsafe { event::wait_if_pending(self.decoded) }.call("cuEventSynchronize(nvjpeg)")
    }

    /// "hardware" or "default".
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Decodes every target on `stream` (the GPU work is enqueued; the host returns at once
    /// with the hardware backend, after the Huffman decode with the default one).
    ///
    /// # Safety
    /// `stream` is a live stream of this GPU, and each target's `dst` is device memory with
    /// room for its image's rows of `3·width` bytes.
    pub unsafe fn decode(&mut self, targets: &[JpegTarget], stream: CUstream) -> Result<()> {
        if targets.is_empty() {
            return Ok(());
        }
        self.gpu.ctx.bind_to_thread().call("cuCtxSetCurrent")?;
        self.wait_decoded()?;
        if self.batch != targets.len() {
            let n = i32::try_from(targets.len())
                .map_err(|_| Error::device("nvjpeg", "batch too large"))?;
            // The state and handle are live; the batch size and format are plain values.
            unsafe {
                nj::decode_batched_initialize(self.handle, self.state, n, 1, nj::OUTPUT_RGBI)
            }
            .map_err(|e| failed("nvjpegDecodeBatchedInitialize", e))?;
            self.batch = targets.len();
        }
        let data: Vec<&[u8]> = targets.iter().map(|t| t.bytes).collect();
        let mut images: Vec<NvjpegImage> = targets
            .iter()
            .map(|t| NvjpegImage {
                channel: [
                    t.dst as *mut u8,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                ],
                pitch: [3 * t.width, 0, 0, 0],
            })
            .collect();
        // Each destination holds height rows of 3·width bytes (the caller sized the sources).
        let r = unsafe { nj::decode_batched(self.handle, self.state, &data, &mut images, stream) };
        if let Err(e) = r {
            // A failed batch leaves the state to be initialised again.
            self.batch = 0;
            return Err(failed("nvjpegDecodeBatched", e));
        }
        unsafe { event::record(self.decoded, stream) }.call("cuEventRecord(nvjpeg)")
    }
}

impl Drop for GpuJpeg {
    fn drop(&mut self) {
        // Best effort at teardown.
        let _ = self.gpu.ctx.bind_to_thread();
        let _ = self.wait_decoded();
        unsafe {
            let _ = event::destroy(self.decoded);
            let _ = nj::state_destroy(self.state);
            let _ = nj::destroy(self.handle);
        }
    }
}
