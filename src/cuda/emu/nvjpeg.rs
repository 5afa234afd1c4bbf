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
//! - the destination: `channel[0]` non-null, `pitch[0] ≥ 3·width`, and the `height` rows of
//!   `3·width` bytes at `channel[0] + row·pitch[0]` inside one live device allocation
//!   (`INVALID_PARAMETER`, naming the image and the pointer); only the bytes of those rows are
//!   marked written (the padding of a larger pitch stays as it was).
//!
//! Every image of a batch is decoded and every destination checked before anything is
//! written: a refused batch writes nothing. Emulated streams are synchronous; a decode on a
//! capturing stream is refused (nvJPEG's decode waits on the host, which stream capture does
//! not allow).

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
    };
    Ok(STATES.insert(s).map_err(internal)? as NvjpegState)
}

/// # Safety
/// None beyond the state's (checked).
pub unsafe fn state_destroy(s: NvjpegState) -> Result<()> {
    if STATES.remove(s as usize).map_err(internal)? {
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

/// What the frame header of a JPEG says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The SOFn marker's n (0 baseline, 1 extended, 2 progressive, 3 lossless, ...).
    pub sof: u8,
    pub precision: u8,
    pub width: u32,
    pub height: u32,
    /// (horizontal, vertical) sampling factor of each component.
    pub sampling: Vec<(u8, u8)>,
    /// How many components the first scan holds (all of them: one interleaved scan, as the
    /// HARDWARE backend needs; fewer: more scans follow); `None` when no scan header follows
    /// the frame header.
    pub first_scan: Option<u8>,
}

impl Header {
    /// Width and height of component `i` (the image's, scaled by its sampling factors).
    pub fn plane(&self, i: usize) -> (u32, u32) {
        let hmax = self.sampling.iter().map(|s| s.0).max().unwrap_or(1).max(1) as u32;
        let vmax = self.sampling.iter().map(|s| s.1).max().unwrap_or(1).max(1) as u32;
        let (h, v) = self.sampling[i];
        (
            (self.width * h as u32).div_ceil(hmax),
            (self.height * v as u32).div_ceil(vmax),
        )
    }

    /// The chroma subsampling name (the HARDWARE backend takes 4:4:4, 4:2:2, 4:2:0, 4:4:0).
    fn subsampling(&self) -> &'static str {
        if self.sampling.len() != 3 {
            return "other";
        }
        let (y, cb, cr) = (self.sampling[0], self.sampling[1], self.sampling[2]);
        if cb != cr || cb.0 == 0 || cb.1 == 0 || y.0 % cb.0 != 0 || y.1 % cb.1 != 0 {
            return "other";
        }
        match (y.0 / cb.0, y.1 / cb.1) {
            (1, 1) => "4:4:4",
            (2, 1) => "4:2:2",
            (2, 2) => "4:2:0",
            (1, 2) => "4:4:0",
            (4, 1) => "4:1:1",
            (4, 2) => "4:1:0",
            _ => "other",
        }
    }
}

/// Reads the markers up to the frame header. `BAD_JPEG` for a stream that is not a JPEG or
/// has a malformed segment, `INCOMPLETE_BITSTREAM` when it ends before the frame header.
pub fn parse_header(data: &[u8]) -> Result<Header> {
    let short = || {
        NvjpegError::new(
            STATUS_INCOMPLETE_BITSTREAM,
            format!(
                "the stream ends after {} bytes, before its frame header",
                data.len()
            ),
        )
    };
    if data.len() < 2 {
        return Err(short());
    }
    if data[0] != 0xFF || data[1] != 0xD8 {
        return Err(NvjpegError::new(
            STATUS_BAD_JPEG,
            format!(
                "no start-of-image marker (the stream starts {:02X} {:02X}, not FF D8)",
                data[0], data[1]
            ),
        ));
    }
    let mut i = 2;
    loop {
        // Fill bytes may precede a marker.
        while i < data.len() && data[i] == 0xFF && data.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        if i + 4 > data.len() {
            return Err(short());
        }
        if data[i] != 0xFF {
            return Err(NvjpegError::new(
                STATUS_BAD_JPEG,
                format!("byte {i}: {:02X} where a marker was expected", data[i]),
            ));
        }
        let m = data[i + 1];
        let len = u16::from_be_bytes([data[i + 2], data[i + 3]]) as usize;
        if matches!(m, 0xD8 | 0xD9 | 0xDA | 0x00 | 0x01 | 0xD0..=0xD7) {
            return Err(NvjpegError::new(
                STATUS_BAD_JPEG,
                format!("byte {i}: marker FF {m:02X} before the frame header"),
            ));
        }
        if len < 2 {
            return Err(NvjpegError::new(
                STATUS_BAD_JPEG,
                format!("byte {i}: segment FF {m:02X} of length {len}"),
            ));
        }
        let body = i + 4;
        let end = i + 2 + len;
        if end > data.len() {
            return Err(short());
        }
        let is_sof = (0xC0..=0xCF).contains(&m) && !matches!(m, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let b = &data[body..end];
            if b.len() < 6 {
                return Err(NvjpegError::new(
                    STATUS_BAD_JPEG,
                    format!("frame header of {} bytes", b.len()),
                ));
            }
            let n = b[5] as usize;
            if n == 0 || b.len() < 6 + 3 * n {
                return Err(NvjpegError::new(
                    STATUS_BAD_JPEG,
                    format!("frame header of {} bytes for {n} components", b.len()),
                ));
            }
            let sampling = (0..n)
                .map(|c| (b[6 + 3 * c + 1] >> 4, b[6 + 3 * c + 1] & 15))
                .collect::<Vec<_>>();
            if sampling
                .iter()
                .any(|&(h, v)| !(1..=4).contains(&h) || !(1..=4).contains(&v))
            {
                return Err(NvjpegError::new(
                    STATUS_BAD_JPEG,
                    format!("sampling factors {sampling:?} outside 1..=4"),
                ));
            }
            return Ok(Header {
                sof: m - 0xC0,
                precision: b[0],
                height: u16::from_be_bytes([b[1], b[2]]) as u32,
                width: u16::from_be_bytes([b[3], b[4]]) as u32,
                sampling,
                first_scan: first_scan(data, end),
            });
        }
        i = end;
    }
}

/// The component count of the first scan header at or after byte `i` (the segments between
/// the frame and the scan are walked by their lengths), or `None` if there is none to read.
fn first_scan(data: &[u8], mut i: usize) -> Option<u8> {
    loop {
        while i < data.len() && data[i] == 0xFF && data.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        if i + 4 > data.len() || data[i] != 0xFF {
            return None;
        }
        if data[i + 1] == 0xDA {
            return data.get(i + 4).copied();
        }
        let len = u16::from_be_bytes([data[i + 2], data[i + 3]]) as usize;
        if len < 2 {
            return None;
        }
        i += 2 + len;
    }
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

/// Why `backend`'s decode does not take a JPEG with header `hd` (what
/// nvjpegDecodeBatchedSupported answers from the header alone), or `None` when it does.
pub fn unsupported(hd: &Header, backend: i32) -> Option<String> {
    let hardware = backend == BACKEND_HARDWARE;
    let kind = match hd.sof {
        0 => "baseline",
        1 => "extended sequential",
        2 => "progressive",
        3 => "lossless",
        _ => "hierarchical or arithmetic-coded",
    };
    let n = hd.sampling.len();
    let css = hd.subsampling();
    if hd.sof > 2 {
        Some(format!(
            "a {kind} JPEG (SOF{}): nvJPEG's DEFAULT and HARDWARE backends decode Huffman-coded \
             DCT JPEGs",
            hd.sof
        ))
    } else if hardware && hd.sof != 0 {
        Some(format!(
            "a {kind} JPEG (SOF{}): the HARDWARE backend decodes baseline JPEGs only",
            hd.sof
        ))
    } else if hd.precision != 8 {
        Some(format!("{}-bit samples (8-bit only)", hd.precision))
    } else if n == 4 {
        Some("4 components (CMYK or YCCK): decoding to RGBI takes 1 or 3".into())
    } else if n != 1 && n != 3 {
        Some(format!("{n} components: decoding to RGBI takes 1 or 3"))
    } else if hardware && hd.first_scan != Some(n as u8) {
        Some(match hd.first_scan {
            Some(k) => format!(
                "the first scan holds {k} of the {n} components (more scans follow): the \
                 HARDWARE backend decodes single-scan JPEGs"
            ),
            None => "no scan header after the frame header".into(),
        })
    } else if hardware && n == 3 && !matches!(css, "4:4:4" | "4:2:2" | "4:2:0" | "4:4:0") {
        Some(format!(
            "chroma subsampling {css}, which the HARDWARE backend does not decode (4:4:4, \
             4:2:2, 4:2:0 and 4:4:0 only)"
        ))
    } else {
        None
    }
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

/// The JPEG stream's header (if parsed) after checking it is live and of handle `h`.
fn stream_of(h: NvjpegHandle, js: NvjpegJpegStream, who: &str) -> Result<Option<Header>> {
    let (owner, header) = STREAMS
        .with(js as usize, |x| (x.handle, x.header.clone()))
        .map_err(internal)?
        .ok_or_else(|| {
            invalid(format!(
                "{who}: JPEG stream {:#x} is not a live nvjpegJpegStream_t (never created, or \
                 destroyed)",
                js as usize
            ))
        })?;
    if owner != h as usize {
        return Err(invalid(format!(
            "{who}: JPEG stream {:#x} was created with handle {owner:#x}, not {:#x}",
            js as usize, h as usize
        )));
    }
    Ok(header)
}

pub fn jpeg_stream_create(h: NvjpegHandle) -> Result<NvjpegJpegStream> {
    backend_of(h, "nvjpegJpegStreamCreate")?;
    let js = JpegStream {
        handle: h as usize,
        header: None,
    };
    Ok(STREAMS.insert(js).map_err(internal)? as NvjpegJpegStream)
}

/// # Safety
/// None beyond the stream's (checked).
pub unsafe fn jpeg_stream_destroy(js: NvjpegJpegStream) -> Result<()> {
    if STREAMS.remove(js as usize).map_err(internal)? {
        Ok(())
    } else {
        Err(invalid(format!(
            "nvjpegJpegStreamDestroy: JPEG stream {:#x} is not a live nvjpegJpegStream_t (never \
             created, or destroyed)",
            js as usize
        )))
    }
}

pub fn jpeg_stream_parse_header(h: NvjpegHandle, data: &[u8], js: NvjpegJpegStream) -> Result<()> {
    let who = "nvjpegJpegStreamParseHeader";
    backend_of(h, who)?;
    stream_of(h, js, who)?;
    let parsed = if data.is_empty() {
        Err(invalid(format!("{who}: data is empty (length 0)")))
    } else {
        parse_header(data).map_err(|e| NvjpegError::new(e.status, format!("{who}: {}", e.detail)))
    };
    // A failed parse leaves no header behind: the next support query cannot answer for the
    // image parsed before.
    let header = parsed.as_ref().ok().cloned();
    STREAMS
        .with(js as usize, |x| x.header = header)
        .map_err(internal)?;
    parsed.map(|_| ())
}

pub fn decode_batched_supported(h: NvjpegHandle, js: NvjpegJpegStream) -> Result<bool> {
    let who = "nvjpegDecodeBatchedSupported";
    let backend = backend_of(h, who)?;
    let header = stream_of(h, js, who)?.ok_or_else(|| {
        invalid(format!(
            "{who}: JPEG stream {:#x} holds no parsed header (nvjpegJpegStreamParseHeader did \
             not succeed on it)",
            js as usize
        ))
    })?;
    Ok(unsupported(&header, backend).is_none())
}

/// # Safety
/// None beyond the handle's and state's (checked).
pub unsafe fn decode_batched_pre_allocate(
    h: NvjpegHandle,
    s: NvjpegState,
    batch_size: i32,
    width: i32,
    height: i32,
    chroma_subsampling: i32,
    output_format: i32,
) -> Result<()> {
    let who = "nvjpegDecodeBatchedPreAllocate";
    let (backend, _) = state_of(h, s, who)?;
    for (name, v) in [
        ("batch_size", batch_size),
        ("width", width),
        ("height", height),
    ] {
        if v < 1 {
            return Err(invalid(format!("{who}: {name} = {v}")));
        }
    }
    if !(CSS_444..=CSS_410V).contains(&chroma_subsampling) {
        return Err(invalid(format!(
            "{who}: chroma subsampling {chroma_subsampling} is not an nvjpegChromaSubsampling_t \
             of a stream ({CSS_444}..={CSS_410V})"
        )));
    }
    if !(0..=OUTPUT_FORMAT_MAX).contains(&output_format) {
        return Err(invalid(format!(
            "{who}: output format {output_format} is not an nvjpegOutputFormat_t \
             (0..={OUTPUT_FORMAT_MAX})"
        )));
    }
    if backend != BACKEND_HARDWARE {
        // The hardware decoder's buffers; nothing to allocate for the other backends.
        return Ok(());
    }
    STATES
        .with(s as usize, |x| {
            let calls = x.preallocated.map_or(0, |p| p.calls) + 1;
            x.preallocated = Some(PreAllocation {
                batch_size,
                width,
                height,
                chroma_subsampling,
                output_format,
                calls,
            });
        })
        .map_err(internal)?;
    Ok(())
}

/// What nvjpegDecodeBatchedPreAllocate recorded for state `s` (HARDWARE backend), if anything:
/// for tests of the callers.
pub fn preallocation(s: NvjpegState) -> Option<PreAllocation> {
    STATES
        .with(s as usize, |x| x.preallocated)
        .ok()
        .flatten()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(gray: bool, w: u32, h: u32) -> Vec<u8> {
        let img = if gray {
            image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(w, h, |x, y| {
                image::Luma([(x * 7 + y * 3) as u8])
            }))
        } else {
            image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([x as u8, y as u8, (x + y) as u8])
            }))
        };
        crate::data::stream::synth::jpeg_bytes(&img, 90)
    }

    #[test]
    fn the_header_gives_sizes_and_planes() {
        let j = jpeg(false, 33, 17);
        let hd = parse_header(&j).unwrap();
        assert_eq!((hd.sof, hd.precision, hd.width, hd.height), (0, 8, 33, 17));
        assert_eq!(hd.sampling.len(), 3);
        assert_eq!(hd.plane(0), (33, 17));
        let g = parse_header(&jpeg(true, 5, 9)).unwrap();
        assert_eq!((g.sampling.len(), g.plane(0)), (1, (5, 9)));
    }

    #[test]
    fn the_hardware_backend_takes_baseline_single_scan_jpegs_of_its_subsamplings() {
        let (hw, def) = (BACKEND_HARDWARE, BACKEND_DEFAULT);
        let j = jpeg(false, 24, 16);
        let hd = parse_header(&j).unwrap();
        assert_eq!(
            hd.first_scan,
            Some(3),
            "`image` writes one interleaved scan"
        );
        assert_eq!(parse_header(&jpeg(true, 8, 8)).unwrap().first_scan, Some(1));
        assert_eq!(unsupported(&hd, hw), None);
        // The first scan with one of the three components: more scans follow.
        let sos = j.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        let mut split = j.clone();
        split[sos + 4] = 1;
        let multi = parse_header(&split).unwrap();
        assert_eq!(multi.first_scan, Some(1));
        assert!(unsupported(&multi, hw).unwrap().contains("single-scan"));
        assert_eq!(unsupported(&multi, def), None);
        // Extended sequential: the DEFAULT backend's, not the HARDWARE's.
        let ext = Header {
            sof: 1,
            ..hd.clone()
        };
        assert!(unsupported(&ext, hw)
            .unwrap()
            .contains("baseline JPEGs only"));
        assert_eq!(unsupported(&ext, def), None);
        // Subsamplings: 4:4:0 yes, 4:1:1 and 4:1:0 no (HARDWARE), all on DEFAULT.
        for (y, css, ok) in [
            ((1, 2), "4:4:0", true),
            ((4, 1), "4:1:1", false),
            ((4, 2), "4:1:0", false),
        ] {
            let h = Header {
                sampling: vec![y, (1, 1), (1, 1)],
                ..hd.clone()
            };
            assert_eq!(h.subsampling(), css);
            assert_eq!(unsupported(&h, hw).is_none(), ok, "{css}");
            assert_eq!(unsupported(&h, def), None, "{css}");
        }
        // Four components and 12-bit samples: neither backend.
        let cmyk = Header {
            sampling: vec![(1, 1); 4],
            first_scan: Some(4),
            ..hd.clone()
        };
        assert!(unsupported(&cmyk, def).unwrap().contains("CMYK"));
        let deep = Header {
            precision: 12,
            ..hd
        };
        assert!(unsupported(&deep, def).unwrap().contains("12-bit"));
    }

    #[test]
    fn broken_headers_have_their_status() {
        assert_eq!(
            parse_header(b"PNG.....").unwrap_err().status,
            STATUS_BAD_JPEG
        );
        let j = jpeg(false, 8, 8);
        assert_eq!(
            parse_header(&j[..6]).unwrap_err().status,
            STATUS_INCOMPLETE_BITSTREAM
        );
    }
}
