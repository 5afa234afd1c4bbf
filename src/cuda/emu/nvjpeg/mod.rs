//! Emulated nvJPEG (CUDA 13.0.4, on an emulated H200, which has hardware JPEG decoders): live
//! handles, states and JPEG streams, the arguments checked as nvjpeg.h documents them, each
//! image decoded by the CPU decoder (`jpeg-decoder`, full size, EXIF ignored as nvJPEG ignores
//! it) and written through the emulator's checked device memory.
//!
//! The rules:
//! - handles, states and JPEG streams: an unknown or destroyed one is `INVALID_PARAMETER`,
//!   naming it; a state or stream is used with the handle it was created from;
//! - `nvjpegCreateEx`: backends DEFAULT and HARDWARE (the emulated H200 has the decoders);
//!   any other is `INVALID_PARAMETER` here;
//! - `nvjpegDecodeBatchedInitialize`: batch size ≥ 1 and an output format of nvjpeg.h
//!   (`INVALID_PARAMETER`); `nvjpegDecodeBatched` needs it first, for as many images as it is
//!   given (`INVALID_PARAMETER`), and decodes to RGBI only (other formats:
//!   `IMPLEMENTATION_NOT_SUPPORTED`, a limit of the emulation); so does `nvjpegDecode`;
//! - what a backend decodes ([`unsupported`]): an 8-bit JPEG of 1 (gray, replicated to
//!   R = G = B) or 3 components, Huffman coded, baseline, extended or progressive; the
//!   HARDWARE backend only baseline ones in a single scan, of 4:4:4, 4:2:2, 4:2:0 or 4:4:0
//!   chroma (nvjpeg.h: "baseline JPEG bitstream with single scan. 410 and 411 sub-samplings
//!   are not supported"). Others are `JPEG_NOT_SUPPORTED` (CMYK and YCCK among them); a
//!   malformed stream is `BAD_JPEG`, one that ends early `INCOMPLETE_BITSTREAM`;
//! - three components are always converted from YCbCr: nvjpeg.h says nothing of the markers
//!   that say RGB (Adobe transform 0, component ids 'R', 'G', 'B'), so the emulation takes
//!   the case that would hurt, where they are ignored, and our routing must keep such files
//!   from nvJPEG (`data::stream::encoded`);
//! - `nvjpegJpegStreamParseHeader`: a non-empty stream whose headers read up to the frame
//!   header (else the status above, and the JPEG stream holds no header until the next parse
//!   succeeds); `nvjpegDecodeBatchedSupported` needs a parsed JPEG stream
//!   (`INVALID_PARAMETER`) and answers 0 (supported) exactly for the images
//!   `nvjpegDecodeBatched` of that handle's backend decodes;
//! - `nvjpegDecodeBatchedPreAllocate`: batch size, width and height ≥ 1, a chroma subsampling
//!   and an output format of nvjpeg.h (`INVALID_PARAMETER`); recorded for the state with the
//!   HARDWARE backend ([`preallocation`]), a no-op with the others (DALI and nvImageCodec
//!   call it for the hardware decoder only); it does not need `nvjpegDecodeBatchedInitialize`
//!   first (DALI calls it before), and later batches of larger images still decode (a hint);
//!   it takes device memory for the decoded planes of `batch_size` images of that size at
//!   that subsampling (3 bytes a pixel at 4:4:4), held by the state until the next
//!   pre-allocation or its destruction, and is `ALLOCATOR_FAILURE` when the device cannot
//!   hold them (the state keeps what it had);
//! - the destination: `channel[0]` non-null, `pitch[0] ≥ 3·width`, and the `height` rows of
//!   `3·width` bytes at `channel[0] + row·pitch[0]` inside one live device allocation
//!   (`INVALID_PARAMETER`, naming the image and the pointer); only the bytes of those rows are
//!   marked written (the padding of a larger pitch stays as it was).
//!
//! Every image of a batch is decoded and every destination checked before anything is
//! written: a refused batch writes nothing. Emulated streams are synchronous; a decode on a
//! capturing stream is refused (nvJPEG's decode waits on the host, which stream capture does
//! not allow).

mod header;
mod jpeg_stream;
#[cfg(test)]
mod tests;

pub use header::{parse_header, unsupported, Header};
pub use jpeg_stream::{
    decode_batched_pre_allocate, decode_batched_supported, jpeg_stream_create, jpeg_stream_destroy,
    jpeg_stream_parse_header, preallocation,
};

use super::registry::Registry;
use crate::cuda::driver::cu::CUstream;
use crate::cuda::driver::nvjpeg::*;

/// The nvJPEG version the emulation follows (nvjpeg.h of CUDA 13.0).
pub const VERSION: &str = "13.0.4";

/// Set to 1 to make the emulated nvJPEG unavailable (tests of the fallback paths).
pub const HIDE_VAR: &str = "SIMCLR_EMU_NO_NVJPEG";

struct Handle {
    backend: i32,
}

struct State {
    handle: usize,
    /// (batch size, output format) of the last nvjpegDecodeBatchedInitialize.
    batch: Option<(i32, i32)>,
    preallocated: Option<PreAllocation>,
    /// The device memory the last nvjpegDecodeBatchedPreAllocate took, freed with the state.
    buffers: Option<u64>,
}

/// What nvjpegDecodeBatchedPreAllocate was last given for a state of the HARDWARE backend,
/// and how many times it was called for that state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreAllocation {
    pub batch_size: i32,
    pub width: i32,
    pub height: i32,
    /// nvjpegChromaSubsampling_t.
    pub chroma_subsampling: i32,
    pub output_format: i32,
    pub calls: u32,
}

struct JpegStream {
    handle: usize,
    /// The last successful nvjpegJpegStreamParseHeader's result.
    header: Option<Header>,
}

static HANDLES: Registry<Handle> = Registry::new();
static STATES: Registry<State> = Registry::new();
static STREAMS: Registry<JpegStream> = Registry::new();

fn invalid(detail: impl Into<String>) -> NvjpegError {
    NvjpegError::new(STATUS_INVALID_PARAMETER, detail)
}
fn internal(e: String) -> NvjpegError {
    NvjpegError::new(STATUS_INTERNAL_ERROR, e)
}
fn not_supported(detail: impl Into<String>) -> NvjpegError {
    NvjpegError::new(STATUS_JPEG_NOT_SUPPORTED, detail)
}

pub fn available() -> std::result::Result<(), String> {
    if std::env::var(HIDE_VAR).as_deref() == Ok("1") {
        Err(format!("nvJPEG hidden by {HIDE_VAR}=1"))
    } else {
        Ok(())
    }
}

fn backend_name(b: i32) -> String {
    match b {
        BACKEND_DEFAULT => "DEFAULT".into(),
        BACKEND_HYBRID => "HYBRID".into(),
        BACKEND_GPU_HYBRID => "GPU_HYBRID".into(),
        BACKEND_HARDWARE => "HARDWARE".into(),
        4 => "GPU_HYBRID_DEVICE".into(),
        5 => "HARDWARE_DEVICE".into(),
        6 => "LOSSLESS_JPEG".into(),
        other => format!("{other} (not an nvjpegBackend_t)"),
    }
}

pub fn create(backend: i32) -> Result<NvjpegHandle> {
    available().map_err(|e| NvjpegError::new(STATUS_NOT_INITIALIZED, e))?;
    if backend != BACKEND_DEFAULT && backend != BACKEND_HARDWARE {
        return Err(invalid(format!(
            "nvjpegCreateEx: backend {}; the emulation offers DEFAULT and HARDWARE",
            backend_name(backend)
        )));
    }
    Ok(HANDLES.insert(Handle { backend }).map_err(internal)? as NvjpegHandle)
}

fn backend_of(h: NvjpegHandle, who: &str) -> Result<i32> {
    HANDLES
        .with(h as usize, |x| x.backend)
        .map_err(internal)?
        .ok_or_else(|| {
            invalid(format!(
                "{who}: handle {:#x} is not a live nvJPEG handle (never created, or destroyed)",
                h as usize
            ))
        })
}

/// # Safety
/// None beyond the handle's (checked).
pub unsafe fn destroy(h: NvjpegHandle) -> Result<()> {
    if HANDLES.remove(h as usize).map_err(internal)? {
        Ok(())
    } else {
        Err(invalid(format!(
            "nvjpegDestroy: handle {:#x} is not a live nvJPEG handle (never created, or destroyed)",
            h as usize
        )))
    }
}

pub fn state_create(h: NvjpegHandle) -> Result<NvjpegState> {
    backend_of(h, "nvjpegJpegStateCreate")?;
    let s = State {
        handle: h as usize,
        batch: None,
        preallocated: None,
        buffers: None,
    };
    Ok(STATES.insert(s).map_err(internal)? as NvjpegState)
}

/// # Safety
/// None beyond the state's (checked).
pub unsafe fn state_destroy(s: NvjpegState) -> Result<()> {
    let buffers = STATES
        .with(s as usize, |x| x.buffers.take())
        .map_err(internal)?;
    if STATES.remove(s as usize).map_err(internal)? {
        if let Some(p) = buffers.flatten() {
            crate::cuda::emu::cu::free(p).map_err(|e| internal(format!("{e:?}")))?;
        }
        Ok(())
    } else {
        Err(invalid(format!(
            "nvjpegJpegStateDestroy: state {:#x} is not a live nvJPEG state (never created, or \
             destroyed)",
            s as usize
        )))
    }
}

/// The state's (handle, batch) after checking both are live and belong together; returns the
/// handle's backend too.
fn state_of(h: NvjpegHandle, s: NvjpegState, who: &str) -> Result<(i32, Option<(i32, i32)>)> {
    let backend = backend_of(h, who)?;
    let (owner, batch) = STATES
        .with(s as usize, |x| (x.handle, x.batch))
        .map_err(internal)?
        .ok_or_else(|| {
            invalid(format!(
                "{who}: state {:#x} is not a live nvJPEG state (never created, or destroyed)",
                s as usize
            ))
        })?;
    if owner != h as usize {
        return Err(invalid(format!(
            "{who}: state {:#x} was created with handle {owner:#x}, not {:#x}",
            s as usize, h as usize
        )));
    }
    Ok((backend, batch))
}

/// nvjpegGetImageInfo, from the frame header.
pub fn image_info(h: NvjpegHandle, data: &[u8]) -> Result<(i32, [i32; 4], [i32; 4])> {
    backend_of(h, "nvjpegGetImageInfo")?;
    if data.is_empty() {
        return Err(invalid("nvjpegGetImageInfo: data is empty (length 0)"));
    }
    let hd = parse_header(data)?;
    let n = hd.sampling.len();
    if n > 4 {
        return Err(not_supported(format!(
            "nvjpegGetImageInfo: {n} components (nvJPEG knows at most 4)"
        )));
    }
    let (mut w, mut hh) = ([0i32; 4], [0i32; 4]);
    for c in 0..n {
        let (pw, ph) = hd.plane(c);
        w[c] = pw as i32;
        hh[c] = ph as i32;
    }
    Ok((n as i32, w, hh))
}

/// One decoded image: interleaved RGB rows.
struct Decoded {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

/// The checks of one stream for `backend`, then the CPU decode.
fn decode_one(data: &[u8], backend: i32, who: &str) -> Result<Decoded> {
    let at = |e: NvjpegError| NvjpegError::new(e.status, format!("{who}: {}", e.detail));
    if data.is_empty() {
        return Err(invalid(format!("{who}: length 0")));
    }
    let hd = parse_header(data).map_err(at)?;
    if let Some(why) = unsupported(&hd, backend) {
        return Err(not_supported(format!("{who}: {why}")));
    }
    if hd.width == 0 || hd.height == 0 {
        return Err(NvjpegError::new(
            STATUS_BAD_JPEG,
            format!("{who}: frame of {}x{}", hd.width, hd.height),
        ));
    }
    let mut d = jpeg_decoder::Decoder::new(data);
    if hd.sampling.len() == 3 {
        d.set_color_transform(jpeg_decoder::ColorTransform::YCbCr);
    }
    let px = d.decode().map_err(|e| {
        let status = match &e {
            jpeg_decoder::Error::Unsupported(_) => STATUS_JPEG_NOT_SUPPORTED,
            jpeg_decoder::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                STATUS_INCOMPLETE_BITSTREAM
            }
            _ => STATUS_BAD_JPEG,
        };
        NvjpegError::new(status, format!("{who}: {e}"))
    })?;
    let info = d
        .info()
        .ok_or_else(|| NvjpegError::new(STATUS_BAD_JPEG, format!("{who}: no frame header")))?;
    let (width, height) = (info.width as usize, info.height as usize);
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => px,
        jpeg_decoder::PixelFormat::L8 => px.iter().flat_map(|&v| [v, v, v]).collect(),
        other => {
            return Err(not_supported(format!(
                "{who}: pixel format {other:?} (RGBI takes gray or RGB)"
            )))
        }
    };
    if rgb.len() != width * height * 3 {
        return Err(NvjpegError::new(
            STATUS_BAD_JPEG,
            format!("{who}: decoded {} bytes for {width}x{height}", rgb.len()),
        ));
    }
    Ok(Decoded { width, height, rgb })
}

/// The destination rules; `Ok` when every row of `d` fits.
fn check_destination(dst: &NvjpegImage, d: &Decoded, name: &str) -> Result<()> {
    let (p, pitch) = (dst.channel[0] as u64, dst.pitch[0]);
    let row = 3 * d.width;
    if p == 0 {
        return Err(invalid(format!("{name}.channel[0] is null")));
    }
    if pitch < row {
        return Err(invalid(format!(
            "{name}.pitch[0] = {pitch} < 3·width = {row} (a {}x{} image, RGBI)",
            d.width, d.height
        )));
    }
    let extent = (d.height - 1) * pitch + row;
    crate::cuda::emu::memory::check_bounds(p, extent, &format!("{name}.channel[0]")).map_err(|e| {
        invalid(format!(
            "{e} (the {}x{} image needs {extent} bytes from {p:#x} at pitch {pitch})",
            d.width, d.height
        ))
    })
}

/// Writes the rows (each range checked and marked written).
fn write_rows(dst: &NvjpegImage, d: &Decoded, name: &str) -> Result<()> {
    let row = 3 * d.width;
    for (r, bytes) in d.rgb.chunks_exact(row).enumerate() {
        let at = dst.channel[0] as u64 + (r * dst.pitch[0]) as u64;
        // SAFETY: `at` lies inside a live allocation of the emulator (checked by write_bytes).
        unsafe { super::elems::write_bytes(at, bytes, &format!("{name} row {r}")) }
            .map_err(invalid)?;
    }
    Ok(())
}

fn not_capturing(who: &str) -> Result<()> {
    if super::graph::capturing() {
        return Err(NvjpegError::new(
            STATUS_EXECUTION_FAILED,
            format!(
                "{who} on a capturing stream: nvJPEG's decode waits on the host, which stream \
                 capture does not allow"
            ),
        ));
    }
    Ok(())
}

fn rgbi_only(who: &str, format: i32) -> Result<()> {
    if !(0..=OUTPUT_FORMAT_MAX).contains(&format) {
        return Err(invalid(format!(
            "{who}: output format {format} is not an nvjpegOutputFormat_t (0..={OUTPUT_FORMAT_MAX})"
        )));
    }
    if format != OUTPUT_RGBI {
        return Err(NvjpegError::new(
            STATUS_IMPLEMENTATION_NOT_SUPPORTED,
            format!(
                "{who}: output format {format}: the emulation decodes to RGBI ({OUTPUT_RGBI}) only"
            ),
        ));
    }
    Ok(())
}

/// # Safety
/// None beyond the handle's and state's (checked).
pub unsafe fn decode_batched_initialize(
    h: NvjpegHandle,
    s: NvjpegState,
    batch_size: i32,
    max_cpu_threads: i32,
    output_format: i32,
) -> Result<()> {
    let who = "nvjpegDecodeBatchedInitialize";
    state_of(h, s, who)?;
    if batch_size < 1 {
        return Err(invalid(format!("{who}: batch_size = {batch_size}")));
    }
    if max_cpu_threads < 0 {
        return Err(invalid(format!(
            "{who}: max_cpu_threads = {max_cpu_threads}"
        )));
    }
    if !(0..=OUTPUT_FORMAT_MAX).contains(&output_format) {
        return Err(invalid(format!(
            "{who}: output format {output_format} is not an nvjpegOutputFormat_t \
             (0..={OUTPUT_FORMAT_MAX})"
        )));
    }
    STATES
        .with(s as usize, |x| x.batch = Some((batch_size, output_format)))
        .map_err(internal)?;
    Ok(())
}

/// # Safety
/// Destinations are emulated device pointers (checked).
pub unsafe fn decode_batched(
    h: NvjpegHandle,
    s: NvjpegState,
    data: &[&[u8]],
    destinations: &mut [NvjpegImage],
    stream: CUstream,
) -> Result<()> {
    let _op = crate::cuda::emu::order::op(stream, c"nvjpegDecodeBatched");
    let who = "nvjpegDecodeBatched";
    let (backend, batch) = state_of(h, s, who)?;
    let Some((size, format)) = batch else {
        return Err(invalid(format!(
            "{who}: state {:#x} was not initialised with nvjpegDecodeBatchedInitialize",
            s as usize
        )));
    };
    if data.len() != size as usize {
        return Err(invalid(format!(
            "{who}: {} images for a state initialised for a batch of {size}",
            data.len()
        )));
    }
    if destinations.len() != data.len() {
        return Err(invalid(format!(
            "{who}: {} images but {} destinations",
            data.len(),
            destinations.len()
        )));
    }
    rgbi_only(who, format)?;
    not_capturing(who)?;
    let decoded = data
        .iter()
        .enumerate()
        .map(|(i, d)| decode_one(d, backend, &format!("{who}: image {i}")))
        .collect::<Result<Vec<_>>>()?;
    let names: Vec<String> = (0..data.len())
        .map(|i| format!("{who}: destinations[{i}]"))
        .collect();
    for ((dst, d), name) in destinations.iter().zip(&decoded).zip(&names) {
        check_destination(dst, d, name)?;
    }
    for ((dst, d), name) in destinations.iter().zip(&decoded).zip(&names) {
        write_rows(dst, d, name)?;
    }
    Ok(())
}

/// # Safety
/// The destination is an emulated device pointer (checked).
pub unsafe fn decode(
    h: NvjpegHandle,
    s: NvjpegState,
    data: &[u8],
    output_format: i32,
    destination: &mut NvjpegImage,
    stream: CUstream,
) -> Result<()> {
    let _op = crate::cuda::emu::order::op(stream, c"nvjpegDecode");
    let who = "nvjpegDecode";
    let (backend, _) = state_of(h, s, who)?;
    rgbi_only(who, output_format)?;
    not_capturing(who)?;
    let d = decode_one(data, backend, who)?;
    let name = format!("{who}: destination");
    check_destination(destination, &d, &name)?;
    write_rows(destination, &d, &name)
}
