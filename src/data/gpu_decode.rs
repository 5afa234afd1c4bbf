//! JPEGs decoded on the GPU by nvJPEG (`--decode-on gpu`), straight into the augmentation's
//! sources: one `nvjpegDecodeBatched` per step on the compute stream, full size, interleaved
//! RGB. The hardware backend (the JPEG engines of A100/H100-class GPUs) is used when the GPU
//! has one, else the default backend (Huffman on the CPU, the rest on the GPU).
//!
//! The hardware decodes baseline single-scan JPEGs of 1 or 3 components only, and
//! `nvjpegDecodeBatched` refuses a whole batch for one image it cannot decode. So with the
//! hardware backend each JPEG's header is parsed first (`nvjpegJpegStreamParseHeader`, into one
//! JPEG stream this decoder reuses) and `nvjpegDecodeBatchedSupported` asked, as NVIDIA's
//! samples and DALI do: only the images it takes go to the batched decode; the others are
//! handed back for the CPU. The default backend decodes every JPEG the workers leave encoded
//! (`stream::encoded`), and NVIDIA's samples ask the question only of the hardware backend, so
//! it is not asked there. With the hardware backend, `nvjpegDecodeBatchedPreAllocate`
//! allocates nvJPEG's buffers when the batch size changes, for the batch's largest image,
//! rather than during the first steps (DALI and nvImageCodec call it for the hardware decoder
//! only, and so does this).

use crate::cuda::device::{gpu, Gpu};
use crate::cuda::driver::cu::CUstream;
use crate::cuda::driver::event::{self, CUevent};
use crate::cuda::driver::nvjpeg::{
    self as nj, NvjpegHandle, NvjpegImage, NvjpegJpegStream, NvjpegState,
};
use crate::cuda::error::CudaCall;
use crate::{Error, Result};
use std::sync::Arc;

/// One JPEG to decode and the device address its `height` rows of `3·width` bytes go to.
pub struct JpegTarget<'a> {
    pub bytes: &'a [u8],
    pub dst: u64,
    pub width: usize,
    pub height: usize,
}

/// A JPEG nvJPEG's batched decode does not take, left for the CPU: its index in the targets
/// and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declined {
    pub index: usize,
    pub why: String,
}

/// The bound nvjpegDecodeBatchedPreAllocate was given: images per batch, width, height.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreAllocated {
    pub batch: usize,
    pub width: usize,
    pub height: usize,
}

impl PreAllocated {
    fn covers(&self, other: &PreAllocated) -> bool {
        self.batch >= other.batch && self.width >= other.width && self.height >= other.height
    }

    fn max(&self, other: &PreAllocated) -> PreAllocated {
        PreAllocated {
            batch: self.batch.max(other.batch),
            width: self.width.max(other.width),
            height: self.height.max(other.height),
        }
    }
}

/// An nvJPEG handle and decode state on one GPU.
pub struct GpuJpeg {
    gpu: Arc<Gpu>,
    handle: NvjpegHandle,
    state: NvjpegState,
    backend: &'static str,
    /// The hardware backend's: the one JPEG stream each header is parsed into.
    stream: Option<NvjpegJpegStream>,
    /// The batch size the state was initialised for (0: none yet).
    batch: usize,
    /// What nvjpegDecodeBatchedPreAllocate was given (hardware backend), once it succeeded.
    preallocated: Option<PreAllocated>,
    /// The first failed pre-allocation's message (reported once).
    prealloc_failure: Option<String>,
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
                unsafe { release(handle, None, None) };
                return Err(failed("nvjpegJpegStateCreate", e));
            }
        };
        let stream = if backend == "hardware" {
            match nj::jpeg_stream_create(handle) {
                Ok(js) => Some(js),
                Err(e) => {
                    // The state and handle are ours alone.
                    unsafe { release(handle, Some(state), None) };
                    return Err(failed("nvjpegJpegStreamCreate", e));
                }
            }
        } else {
            None
        };
        let decoded = match event::create() {
            Ok(e) => e,
            Err(e) => {
                // The stream, state and handle are ours alone.
                unsafe { release(handle, Some(state), stream) };
                return Err(e).call("cuEventCreate(nvjpeg)");
            }
        };
        Ok(GpuJpeg {
            gpu,
            handle,
            state,
            backend,
            stream,
            batch: 0,
            preallocated: None,
            prealloc_failure: None,
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

    /// The decode state, for checks of what nvJPEG was told (the emulation records
    /// nvjpegDecodeBatchedPreAllocate per state).
    pub fn state(&self) -> NvjpegState {
        self.state
    }

    /// What nvjpegDecodeBatchedPreAllocate was last given (hardware backend), if it succeeded.
    pub fn preallocated(&self) -> Option<PreAllocated> {
        self.preallocated
    }

    /// Why nvjpegDecodeBatchedPreAllocate first failed, if it ever did (then reported once on
    /// standard error; nvJPEG allocates while it decodes instead).
    pub fn preallocation_failure(&self) -> Option<&str> {
        self.prealloc_failure.as_deref()
    }

    /// Decodes on `stream` every target nvJPEG's batched decode takes (the GPU work is
    /// enqueued; the host returns at once with the hardware backend, after the Huffman decode
    /// with the default one) and returns the others, in order, for the CPU. An error means the
    /// batched call failed and wrote nothing the caller can use.
    ///
    /// # Safety
    /// `stream` is a live stream of this GPU, and each target's `dst` is device memory with
    /// room for its image's `height` rows of `3·width` bytes.
    pub unsafe fn decode(
        &mut self,
        targets: &[JpegTarget],
        stream: CUstream,
    ) -> Result<Vec<Declined>> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        self.gpu.ctx.bind_to_thread().call("cuCtxSetCurrent")?;
        let (taken, declined) = self.triage(targets);
        if taken.is_empty() {
            return Ok(declined);
        }
        self.wait_decoded()?;
        if self.batch != taken.len() {
            let n = i32::try_from(taken.len())
                .map_err(|_| Error::device("nvjpeg", "batch too large"))?;
            // The state and handle are live; the batch size and format are plain values.
            unsafe {
                nj::decode_batched_initialize(self.handle, self.state, n, 1, nj::OUTPUT_RGBI)
            }
            .map_err(|e| failed("nvjpegDecodeBatchedInitialize", e))?;
            self.batch = taken.len();
            self.preallocate(&taken);
        }
        let data: Vec<&[u8]> = taken.iter().map(|t| t.bytes).collect();
        let mut images: Vec<NvjpegImage> = taken
            .iter()
            .map(|t| NvjpegImage::interleaved(t.dst as *mut u8, 3 * t.width))
            .collect();
        // Each destination holds height rows of 3·width bytes (the caller sized the sources).
        let r = unsafe { nj::decode_batched(self.handle, self.state, &data, &mut images, stream) };
        if let Err(e) = r {
            // A failed batch leaves the state to be initialised again.
            self.batch = 0;
            return Err(failed("nvjpegDecodeBatched", e));
        }
        unsafe { event::record(self.decoded, stream) }.call("cuEventRecord(nvjpeg)")?;
        Ok(declined)
    }

    /// The targets nvJPEG's batched decode takes, and the others: with the hardware backend,
    /// each header parsed and nvjpegDecodeBatchedSupported asked; a header nvJPEG cannot parse
    /// is left to the CPU decoder too, which names the file if it cannot read it either.
    fn triage<'t, 'a>(
        &self,
        targets: &'t [JpegTarget<'a>],
    ) -> (Vec<&'t JpegTarget<'a>>, Vec<Declined>) {
        let Some(js) = self.stream else {
            return (targets.iter().collect(), Vec::new());
        };
        let (mut taken, mut declined) = (Vec::new(), Vec::new());
        for (index, t) in targets.iter().enumerate() {
            let answer = nj::jpeg_stream_parse_header(self.handle, t.bytes, js)
                .map_err(|e| format!("nvjpegJpegStreamParseHeader: {e}"))
                .and_then(|()| {
                    nj::decode_batched_supported(self.handle, js)
                        .map_err(|e| format!("nvjpegDecodeBatchedSupported: {e}"))
                });
            match answer {
                Ok(true) => taken.push(t),
                Ok(false) => declined.push(Declined {
                    index,
                    why: "not supported by nvJPEG's hardware decoder, which takes baseline \
                          single-scan JPEGs of 1 or 3 components (not progressive, CMYK, \
                          4:1:1 or 4:1:0 ones)"
                        .into(),
                }),
                Err(why) => declined.push(Declined { index, why }),
            }
        }
        (taken, declined)
    }

    /// nvjpegDecodeBatchedPreAllocate (hardware backend) for `taken`'s size and largest
    /// image, unless an earlier call covered them: nvJPEG then allocates its device and pinned
    /// buffers here, not during the first steps. Only a hint (nvJPEG grows its buffers for
    /// larger images), so a failure is not fatal: it is reported once and nvJPEG allocates as
    /// it decodes, as without it.
    fn preallocate(&mut self, taken: &[&JpegTarget]) {
        if self.stream.is_none() {
            return;
        }
        let need = PreAllocated {
            batch: taken.len(),
            width: taken.iter().map(|t| t.width).max().unwrap_or(0),
            height: taken.iter().map(|t| t.height).max().unwrap_or(0),
        };
        let want = match self.preallocated {
            Some(p) if p.covers(&need) => return,
            Some(p) => p.max(&need),
            None => need,
        };
        let as_int = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
        // The state and handle are live; the rest are plain values. 4:4:4 because a batch mixes
        // subsamplings and 4:4:4 needs the most (DALI passes it too).
        let r = unsafe {
            nj::decode_batched_pre_allocate(
                self.handle,
                self.state,
                as_int(want.batch),
                as_int(want.width),
                as_int(want.height),
                nj::CSS_444,
                nj::OUTPUT_RGBI,
            )
        };
        match r {
            Ok(()) => self.preallocated = Some(want),
            Err(e) if self.prealloc_failure.is_none() => {
                let failure = format!(
                    "nvjpegDecodeBatchedPreAllocate({} images up to {}x{}) failed: {e}",
                    want.batch, want.width, want.height
                );
                eprintln!(
                    "warning: {failure}; nvJPEG allocates its buffers while it decodes instead \
                     (said once)"
                );
                self.prealloc_failure = Some(failure);
            }
            Err(_) => {}
        }
    }
}

/// Destroys what [`GpuJpeg::new`] created, best effort: at teardown or after a failed step of
/// `new`, no one is left to report a failure to.
///
/// # Safety
/// Objects of this decoder alone, unused afterwards.
unsafe fn release(
    handle: NvjpegHandle,
    state: Option<NvjpegState>,
    stream: Option<NvjpegJpegStream>,
) {
    unsafe {
        if let Some(js) = stream {
            let _ = nj::jpeg_stream_destroy(js);
        }
        if let Some(s) = state {
            let _ = nj::state_destroy(s);
        }
        let _ = nj::destroy(handle);
    }
}

impl Drop for GpuJpeg {
    fn drop(&mut self) {
        // Best effort at teardown.
        let _ = self.gpu.ctx.bind_to_thread();
        let _ = self.wait_decoded();
        unsafe {
            let _ = event::destroy(self.decoded);
            release(self.handle, Some(self.state), self.stream);
        }
    }
}
