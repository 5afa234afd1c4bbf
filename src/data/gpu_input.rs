//! The training input when the augmentation runs on the GPU (`--augment-on gpu`): each step's
//! [`RawBatch`] (u8 sources and the views' parameter table) goes up in one copy from one of two
//! page-locked buffers, on a copy stream of its own, and the augmentation kernel
//! (`data::augment::cuda`, one launch for both views of the batch) reads it on the compute
//! stream once an event says the copy landed. The host never waits in the steady state:
//!
//! - the copy stream waits (on the device) for the event recorded after the last kernel that
//!   read the slot's device buffer, so a copy never overwrites a batch still being augmented;
//! - the host refills a pinned buffer only when the copy out of it is done: with two slots
//!   that copy ran a step ago, so the poll finds it done (a wait, if needed, is counted).
//!
//! One upload carries, in order: the AugView rows (88 bytes per view), the normalisation
//! constants (none by default) and the source pixels, each part 256-byte aligned. With
//! `--decode-on gpu` the batch's encoded JPEGs are decoded by nvJPEG (`data::gpu_decode`) on
//! the compute stream, after the copy, into the device buffer right after those pixels. The
//! JPEGs nvJPEG's hardware decoder does not take (`GpuJpeg::decode` hands them back) are
//! decoded on the CPU and copied there in the same step; if nvJPEG refuses the batched call
//! itself, all of the batch's JPEGs are. Each kind of fallback is said once, and counted
//! ([`GpuInput::jpeg_counts`]).

use super::augment::cuda::{self as aug, Inputs};
use super::gpu_decode::{Declined, GpuJpeg, JpegTarget};
use super::raw_views::host_decode;
use super::{AugmentConfig, RawBatch};
use crate::cuda::alloc::DeviceBuffer;
use crate::cuda::device::{gpu, Gpu};
use crate::cuda::driver::{cu, event, host};
use crate::cuda::error::CudaCall;
use crate::{DType, Result, Tensor};
use std::sync::Arc;

/// Alignment of each part of the upload.
const ALIGN: usize = 256;

/// One pinned buffer, its device twin (which also holds the GPU-decoded sources) and the
/// events that order their reuse.
struct Slot {
    host: *mut u8,
    dev: DeviceBuffer,
    bytes: usize,
    /// The JPEG bytes last handed to nvJPEG from this slot, kept until the slot's next use.
    retained: Vec<Arc<[u8]>>,
    /// Recorded on the copy stream after the copy out of `host` into `dev`.
    copied: event::CUevent,
    /// Recorded on the compute stream after the last kernel that read `dev`.
    consumed: event::CUevent,
}

impl Slot {
    fn new(g: &Arc<Gpu>, bytes: usize, dev_bytes: usize) -> Result<Self> {
        g.ctx.bind_to_thread().call("cuCtxSetCurrent")?;
        // Freed in Drop with the same size.
        let host = unsafe { host::malloc_host(bytes) }.call("cuMemHostAlloc(gpu input)")?;
        let dev = DeviceBuffer::alloc(g, dev_bytes.max(bytes))?;
        let copied = event::create().call("cuEventCreate(gpu input)")?;
        let consumed = event::create().call("cuEventCreate(gpu input)")?;
        // The allocation is ordered on the compute stream: the first copy (on the copy stream)
        // waits for this record.
        unsafe { event::record(consumed, g.cu_stream()) }.call("cuEventRecord(gpu input)")?;
        Ok(Slot {
            host,
            dev,
            bytes,
            retained: Vec::new(),
            copied,
            consumed,
        })
    }

    /// Waits (counted) only if the last augmentation from this slot is still running; needed
    /// only before dropping the JPEG bytes nvJPEG was given from it.
    fn release_jpegs(&mut self) -> Result<()> {
        if self.retained.is_empty() {
            return Ok(());
        }
        // The event belongs to this slot.
        unsafe { event::wait_if_pending(self.consumed) }.call("cuEventSynchronize(gpu input)")?;
        self.retained.clear();
        Ok(())
    }

    /// Waits (counted) only if the last copy out of the pinned buffer is still running.
    fn wait_copied(&self) -> Result<()> {
        // The event belongs to this slot.
        unsafe { event::wait_if_pending(self.copied) }.call("cuEventSynchronize(gpu input)")
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Best effort: a failed wait or free at teardown has no one to report to. The JPEG
        // bytes nvJPEG was given stay alive until the step that decoded them has run.
        let _ = self.wait_copied();
        let _ = self.release_jpegs();
        unsafe {
            let _ = event::destroy(self.copied);
            let _ = event::destroy(self.consumed);
            let _ = host::free_host(self.host, self.bytes);
        }
    }
}

/// Uploads raw batches and augments them on one GPU.
pub struct GpuInput {
    gpu: Arc<Gpu>,
    copy: cu::CUstream,
    slots: [Option<Slot>; 2],
    next: usize,
    /// The kernel's f32 work space, used on the compute stream only.
    work: Option<DeviceBuffer>,
    /// nvJPEG, once `decode_jpegs` set it up.
    jpeg: Option<GpuJpeg>,
    /// Where the encoded JPEGs were decoded, and which fallbacks were reported.
    fallback: Fallback,
}

/// How many of the encoded JPEGs each decoder decoded since the input was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JpegCounts {
    /// By nvJPEG's batched decode.
    pub nvjpeg: usize,
    /// On the CPU: those nvJPEG's hardware decoder does not take, and every JPEG of a batch
    /// whose batched call failed.
    pub cpu: usize,
}

/// The counts and whether each kind of CPU fallback was reported (once each).
#[derive(Default)]
struct Fallback {
    counts: JpegCounts,
    said_declined: bool,
    said_refused: bool,
}

// The raw pointers are a stream and host buffers this value owns alone.
unsafe impl Send for GpuInput {}

fn aligned(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Byte offsets of the table, the constants and the pixels in one upload, and its length.
fn layout(views: usize, norm: usize, pixels: usize) -> [usize; 4] {
    let table = 0;
    let consts = aligned(views * aug::ROW_WORDS * 4);
    let px = consts + aligned(norm * 4);
    [table, consts, px, px + pixels]
}

impl GpuInput {
    pub fn new(ordinal: usize) -> Result<Self> {
        let g = gpu(ordinal)?;
        g.ctx.bind_to_thread().call("cuCtxSetCurrent")?;
        let copy = event::stream_create().call("cuStreamCreate(gpu input)")?;
        Ok(GpuInput {
            gpu: g,
            copy,
            slots: [None, None],
            next: 0,
            work: None,
            jpeg: None,
            fallback: Fallback::default(),
        })
    }

    /// Sets up nvJPEG for batches holding encoded JPEGs (`SourceDecode::Gpu`); returns its
    /// backend ("hardware" or "default").
    pub fn decode_jpegs(&mut self) -> Result<&'static str> {
        let j = GpuJpeg::new(self.gpu.ordinal)?;
        let backend = j.backend();
        self.jpeg = Some(j);
        Ok(backend)
    }

    /// Where the encoded JPEGs of the batches so far were decoded.
    pub fn jpeg_counts(&self) -> JpegCounts {
        self.fallback.counts
    }

    /// Bytes one step uploads for `batch` (table, constants, pixels, with alignment).
    pub fn upload_bytes(cfg: &AugmentConfig, batch: &RawBatch) -> usize {
        let n = aug::norm_constants(cfg).len();
        layout(batch.views.len(), n, batch.pixels.len())[3]
    }

    /// Every view of `batch` augmented by `cfg` (bilinear), `[views, size, size, 3]` in
    /// `dtype`, enqueued without the host waiting.
    pub fn views(&mut self, cfg: &AugmentConfig, batch: &RawBatch, dtype: DType) -> Result<Tensor> {
        let ksize = aug::check_config(cfg)?;
        let g = self.gpu.clone();
        g.ctx.bind_to_thread().call("cuCtxSetCurrent")?;
        let norm = aug::norm_constants(cfg);
        let mut table = Vec::with_capacity(batch.views.len() * aug::ROW_WORDS);
        for v in &batch.views {
            table.extend(aug::row(&v.params, v.size, v.full, v.offset)?);
        }
        let [t0, n0, p0, total] = layout(batch.views.len(), norm.len(), batch.pixels.len());
        // The device side also holds the sources nvJPEG decodes, after the pixels.
        let dev_total = p0 + batch.sources_bytes();
        let i = self.next;
        self.next ^= 1;
        if !matches!(&self.slots[i], Some(s) if s.bytes >= total && s.dev.bytes() >= dev_total) {
            if let Some(old) = self.slots[i].as_mut() {
                old.release_jpegs()?;
            }
            self.slots[i] = None; // waits for its copy, frees it
            self.slots[i] = Some(Slot::new(&g, total, dev_total)?);
        }
        let slot = self.slots[i].as_mut().expect("filled above");
        slot.release_jpegs()?;
        slot.wait_copied()?;
        // The pinned buffer holds `total` bytes and no copy reads it any more; the parts are
        // plain old data written at their offsets.
        unsafe {
            let put = |off: usize, bytes: &[u8]| {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), slot.host.add(off), bytes.len())
            };
            put(t0, as_bytes(&table));
            put(n0, as_bytes(&norm));
            put(p0, &batch.pixels);
        }
        let need = aug::work_bytes(cfg, batch.views.len());
        if !matches!(&self.work, Some(w) if w.bytes() >= need) {
            self.work = None;
            self.work = Some(DeviceBuffer::alloc(&g, need)?);
        }
        let work = self.work.as_ref().expect("filled above");
        let compute = g.cu_stream();
        let base = slot.dev.ptr();
        // Ordering only: the copy waits for the last reader of `dev`, the kernel for the copy;
        // the pinned buffer is not touched again before `copied` completes.
        unsafe {
            event::stream_wait(self.copy, slot.consumed).call("cuStreamWaitEvent(copy)")?;
            let src = std::slice::from_raw_parts(slot.host as *const u8, total);
            cu::memcpy_htod_async(base, src, self.copy).call("cuMemcpyHtoDAsync(gpu input)")?;
            event::record(slot.copied, self.copy).call("cuEventRecord(copied)")?;
            event::stream_wait(compute, slot.copied).call("cuStreamWaitEvent(compute)")?;
        }
        if !batch.encoded.is_empty() {
            let src = base + p0 as u64;
            slot.retained = batch.encoded.iter().map(|e| e.jpeg.bytes.clone()).collect();
            decode_encoded(&mut self.jpeg, &mut self.fallback, batch, src, compute)?;
        }
        let inp = Inputs {
            src: base + p0 as u64,
            table: base + t0 as u64,
            norm: if norm.is_empty() { 0 } else { base + n0 as u64 },
            work: work.ptr(),
            views: batch.views.len(),
        };
        // The device buffer holds the table, constants and pixels at these offsets.
        let out = unsafe { aug::launch(&g, cfg, ksize, &inp, dtype)? };
        unsafe { event::record(slot.consumed, compute) }.call("cuEventRecord(consumed)")?;
        Ok(out)
    }
}

impl GpuInput {
    /// The sources the last [`Self::views`] call of `batch` (with `cfg`) built its views from,
    /// as the device holds them: the host-decoded pixels, then the JPEGs the device decoded.
    /// Waits for the device. For tests: nvJPEG's pixels differ from the CPU decoder's by a few
    /// levels, so the GPU's views are checked against the CPU augmentation of these.
    pub fn last_sources(&self, cfg: &AugmentConfig, batch: &RawBatch) -> Result<Vec<u8>> {
        let slot = self.slots[self.next ^ 1]
            .as_ref()
            .ok_or_else(|| crate::Error::device("gpu input", "no views were built yet"))?;
        let p0 = layout(batch.views.len(), aug::norm_constants(cfg).len(), 0)[2];
        let mut out = vec![0u8; batch.sources_bytes()];
        if p0 + out.len() > slot.dev.bytes() {
            return Err(crate::Error::device(
                "gpu input",
                "the batch is not the one the last views were built from",
            ));
        }
        let g = &self.gpu;
        g.ctx.bind_to_thread().call("cuCtxSetCurrent")?;
        // In bounds of the slot's device buffer (checked above); the host waits below.
        unsafe { cu::memcpy_dtoh_async(&mut out, slot.dev.ptr() + p0 as u64, g.cu_stream()) }
            .call("cuMemcpyDtoHAsync(gpu input sources)")?;
        g.synchronize()?;
        Ok(out)
    }
}

impl Drop for GpuInput {
    fn drop(&mut self) {
        // The slots wait for their copies before the stream goes.
        self.slots = [None, None];
        let _ = self.gpu.ctx.bind_to_thread();
        let _ = unsafe { event::stream_destroy(self.copy) };
    }
}

/// The batch's encoded JPEGs decoded into the sources at `src` on the compute stream: by
/// nvJPEG, except those it does not take and, when it refuses the batched call, all of them,
/// which are decoded on the CPU and copied (each kind reported once, all counted).
fn decode_encoded(
    jpeg: &mut Option<GpuJpeg>,
    fallback: &mut Fallback,
    batch: &RawBatch,
    src: u64,
    compute: cu::CUstream,
) -> Result<()> {
    let Some(j) = jpeg.as_mut() else {
        return Err(crate::Error::device(
            "gpu input",
            "the batch holds encoded JPEGs and no GPU decoder was set up (GpuInput::decode_jpegs)",
        ));
    };
    let targets: Vec<JpegTarget> = batch
        .encoded
        .iter()
        .map(|e| JpegTarget {
            bytes: &e.jpeg.bytes,
            dst: src + e.offset as u64,
            width: e.jpeg.size.1,
            height: e.jpeg.size.0,
        })
        .collect();
    let n = targets.len();
    // The compute stream is the GPU's; the sources were sized for every decoded image.
    let on_cpu: Vec<usize> = match unsafe { j.decode(&targets, compute) } {
        Ok(declined) => {
            if !fallback.said_declined && !declined.is_empty() {
                say_declined(&declined, n, batch);
                fallback.said_declined = true;
            }
            declined.iter().map(|d| d.index).collect()
        }
        Err(e) => {
            if !fallback.said_refused {
                eprintln!(
                    "warning: nvJPEG refused a batch ({e}); its {n} JPEGs are decoded on the CPU \
                     (said once)"
                );
                fallback.said_refused = true;
            }
            (0..n).collect()
        }
    };
    fallback.counts.nvjpeg += n - on_cpu.len();
    fallback.counts.cpu += on_cpu.len();
    for i in on_cpu {
        let enc = &batch.encoded[i];
        let px = host_decode(&enc.jpeg)?;
        // From pageable memory: the driver has staged `px` when the call returns.
        unsafe { cu::memcpy_htod_async(src + enc.offset as u64, &px, compute) }
            .call("cuMemcpyHtoDAsync(CPU-decoded JPEG)")?;
    }
    Ok(())
}

/// The first report of JPEGs nvJPEG's batched decode does not take.
fn say_declined(declined: &[Declined], n: usize, batch: &RawBatch) {
    let first = &declined[0];
    eprintln!(
        "warning: {} of {n} JPEGs of a batch are decoded on the CPU, the rest by nvJPEG; the \
         first, {}: {} (said once; GpuInput::jpeg_counts counts them)",
        declined.len(),
        batch.encoded[first.index].jpeg.path.display(),
        first.why
    );
}

/// Plain old data viewed as its bytes.
fn as_bytes<T: Copy>(v: &[T]) -> &[u8] {
    // u32 and f32 have no padding; the slice outlives the view.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}
