//! nvJPEG through the driver floor (`src/cuda/driver/nvjpeg.rs`): batches of baseline RGB and
//! grayscale JPEGs of different sizes decoded into device buffers, at pitch 3·width and
//! larger, compared with the CPU decode of the same bytes at full size (`jpeg-decoder`, gray
//! replicated to R = G = B): byte for byte on the emulated device, whose nvJPEG decodes with
//! that decoder; within a tolerance on a GPU (nvJPEG's IDCT and chroma upsampling differ).
//!
//! On the emulated device also the refusals, each with its status: a wrong batch size, an
//! uninitialised, destroyed or foreign state, a destination out of range or with a short pitch
//! (nothing of the batch written), a corrupt or truncated JPEG, an output format other than
//! RGBI, an unknown backend, and a progressive JPEG on the HARDWARE backend (built by hand
//! below: `image` writes baseline only).
//!
//! The support query (a JPEG stream's parsed header, nvjpegDecodeBatchedSupported) answers
//! 0 for the baseline RGB and gray JPEGs and not for a progressive or a CMYK one on the
//! HARDWARE backend, on a GPU too; on the emulated device the batched decode refuses exactly
//! the images it calls unsupported, and the JPEG stream and pre-allocation calls refuse what
//! nvjpeg.h does not allow (unparsed or destroyed streams, a stream of another handle, an
//! empty or broken header, sizes below 1, subsamplings and formats outside their enums), the
//! pre-allocation is recorded for the HARDWARE backend only and larger images still decode.
//!
//! Without a usable GPU (or without nvJPEG on a GPU machine) the tests print `skipped:`.
#![cfg(feature = "cuda")]

#[path = "support/child_test.rs"]
mod child_test;
#[path = "cuda_common.rs"]
mod common;
use child_test::run_child_test;
use common::gpu;

use simclr::cuda::driver::cu::{self, CUdeviceptr};
use simclr::cuda::driver::nvjpeg::{self as nj, NvjpegImage};
use simclr::cuda::Gpu;
use simclr::data::stream::synth::{jpeg_bytes, picture};
use simclr::data::stream::synth_jpeg::{cmyk_jpeg, progressive_gray_jpeg};
use simclr::testing::decode_tolerance::assert_decoded_like_cpu;
use simclr::Rng;
use std::sync::Arc;

fn emulated() -> bool {
    simclr::cuda::driver::is_emulated()
}

/// The GPU and nvJPEG, or `None` (skipped) without either.
fn setup() -> Option<Arc<Gpu>> {
    let simclr::Device::Cuda(ordinal) = gpu()? else {
        return None;
    };
    if let Err(why) = nj::available() {
        assert!(
            !emulated(),
            "the emulated nvJPEG is unavailable: {why} (is SIMCLR_EMU_NO_NVJPEG=1 set?)"
        );
        println!("skipped: {why}");
        return None;
    }
    let g = simclr::cuda::gpu(ordinal).unwrap();
    g.ctx.bind_to_thread().unwrap();
    Some(g)
}

/// A device allocation of `bytes`, freed on drop.
struct Buf {
    ptr: CUdeviceptr,
    g: Arc<Gpu>,
}

impl Buf {
    fn new(g: &Arc<Gpu>, bytes: usize) -> Buf {
        let ptr = unsafe { cu::malloc_async(g.cu_stream(), bytes) }.unwrap();
        Buf { ptr, g: g.clone() }
    }
    /// Reads `bytes` at `offset` (after the stream's work).
    fn read(&self, offset: usize, bytes: usize) -> Result<Vec<u8>, String> {
        let mut out = vec![0u8; bytes];
        unsafe { cu::memcpy_dtoh_async(&mut out, self.ptr + offset as u64, self.g.cu_stream()) }
            .map_err(|e| format!("{e:?}"))?;
        self.g.ctx.synchronize().map_err(|e| format!("{e:?}"))?;
        Ok(out)
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        let _ = unsafe { cu::free_async(self.ptr, self.g.cu_stream()) };
    }
}

/// One test image: its JPEG bytes and the CPU decode (RGB rows, gray replicated).
struct Case {
    w: usize,
    h: usize,
    gray: bool,
    jpeg: Vec<u8>,
}

impl Case {
    fn new(w: u32, h: u32, gray: bool, rng: &mut Rng) -> Case {
        let rgb = picture(h, w, rng);
        let img = if gray {
            image::DynamicImage::ImageLuma8(image::DynamicImage::ImageRgb8(rgb).to_luma8())
        } else {
            image::DynamicImage::ImageRgb8(rgb)
        };
        Case {
            w: w as usize,
            h: h as usize,
            gray,
            jpeg: jpeg_bytes(&img, 85),
        }
    }

    fn cpu(&self) -> Vec<u8> {
        cpu_decode(&self.jpeg)
    }
}

fn cpu_decode(jpeg: &[u8]) -> Vec<u8> {
    let mut d = jpeg_decoder::Decoder::new(jpeg);
    let px = d.decode().unwrap();
    match d.info().unwrap().pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => px,
        jpeg_decoder::PixelFormat::L8 => px.iter().flat_map(|&v| [v, v, v]).collect(),
        f => panic!("test images are gray or RGB, not {f:?}"),
    }
}

/// The decoded rows of `case` out of `buf` at `pitch`.
fn rows(buf: &Buf, case: &Case, pitch: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(case.h * case.w * 3);
    for r in 0..case.h {
        out.extend(buf.read(r * pitch, case.w * 3).unwrap());
    }
    out
}

/// Exact on the emulated device; on a GPU within nvJPEG's differences from the CPU decoder.
fn assert_like_cpu(got: &[u8], case: &Case, what: &str) {
    assert_decoded_like_cpu(got, &case.cpu(), case.w, what);
}

fn cases(rng: &mut Rng) -> Vec<Case> {
    vec![
        Case::new(53, 37, false, rng),
        Case::new(48, 64, true, rng),
        Case::new(9, 17, false, rng),
        Case::new(31, 120, true, rng),
        Case::new(200, 8, false, rng),
    ]
}

/// Pitch of case `i`: 3·width for even `i`, larger for odd.
fn pitch_of(i: usize, c: &Case) -> usize {
    3 * c.w + if i % 2 == 1 { 13 + 8 * i } else { 0 }
}

#[test]
fn a_batch_decodes_like_the_cpu_decoder() {
    let Some(g) = setup() else { return };
    let mut rng = Rng::new(71);
    let cases = cases(&mut rng);
    for backend in [nj::BACKEND_DEFAULT, nj::BACKEND_HARDWARE] {
        let h = match nj::create(backend) {
            Ok(h) => h,
            Err(e) if !emulated() && backend == nj::BACKEND_HARDWARE => {
                println!("skipped the HARDWARE backend on this GPU: {e}");
                continue;
            }
            Err(e) => panic!("nvjpegCreateEx({backend}): {e}"),
        };
        for c in &cases {
            let (n, w, hh) = nj::image_info(h, &c.jpeg).unwrap();
            assert_eq!(n, if c.gray { 1 } else { 3 });
            assert_eq!((w[0] as usize, hh[0] as usize), (c.w, c.h));
            // Absent components are 0; a color JPEG's chroma planes are subsampled.
            assert!(w[n as usize..]
                .iter()
                .chain(&hh[n as usize..])
                .all(|&v| v == 0));
            assert!((1..n as usize).all(|i| w[i] > 0 && w[i] as usize <= c.w));
        }
        let s = nj::state_create(h).unwrap();
        let n = cases.len() as i32;
        unsafe { nj::decode_batched_initialize(h, s, n, 1, nj::OUTPUT_RGBI) }.unwrap();
        // Twice: a state decodes any number of batches of its size.
        for round in 0..2 {
            let bufs: Vec<Buf> = cases
                .iter()
                .enumerate()
                .map(|(i, c)| Buf::new(&g, c.h * pitch_of(i, c)))
                .collect();
            let mut dst: Vec<NvjpegImage> = bufs
                .iter()
                .zip(&cases)
                .enumerate()
                .map(|(i, (b, c))| NvjpegImage::interleaved(b.ptr as *mut u8, pitch_of(i, c)))
                .collect();
            let data: Vec<&[u8]> = cases.iter().map(|c| c.jpeg.as_slice()).collect();
            let before = simclr::cuda::driver::counters().library_calls;
            unsafe { nj::decode_batched(h, s, &data, &mut dst, g.cu_stream()) }.unwrap();
            assert!(simclr::cuda::driver::counters().library_calls > before);
            for (i, (b, c)) in bufs.iter().zip(&cases).enumerate() {
                let what = format!(
                    "backend {backend}, round {round}, image {i} ({}x{}, gray {})",
                    c.w, c.h, c.gray
                );
                assert_like_cpu(&rows(b, c, pitch_of(i, c)), c, &what);
                if emulated() && pitch_of(i, c) > 3 * c.w && c.h > 1 {
                    // The padding of a larger pitch is not written: reading it is refused.
                    let all = b.read(0, c.h * pitch_of(i, c));
                    assert!(all.is_err(), "{what}: the padding reads as written");
                }
            }
        }
        unsafe { nj::state_destroy(s) }.unwrap();
        unsafe { nj::destroy(h) }.unwrap();
    }
}

#[test]
fn one_image_decodes_like_the_cpu_decoder() {
    let Some(g) = setup() else { return };
    let mut rng = Rng::new(72);
    let h = nj::create(nj::BACKEND_DEFAULT).unwrap();
    let s = nj::state_create(h).unwrap();
    for (i, c) in cases(&mut rng).iter().enumerate() {
        let pitch = pitch_of(i, c);
        let b = Buf::new(&g, c.h * pitch);
        let mut dst = NvjpegImage::interleaved(b.ptr as *mut u8, pitch);
        unsafe { nj::decode(h, s, &c.jpeg, nj::OUTPUT_RGBI, &mut dst, g.cu_stream()) }.unwrap();
        assert_like_cpu(&rows(&b, c, pitch), c, &format!("nvjpegDecode image {i}"));
    }
    unsafe { nj::state_destroy(s) }.unwrap();
    unsafe { nj::destroy(h) }.unwrap();
}

#[test]
fn a_batch_of_another_size_is_refused() {
    let Some(g) = setup() else { return };
    let mut rng = Rng::new(73);
    let c = Case::new(16, 16, false, &mut rng);
    let b = Buf::new(&g, 16 * 48);
    let h = nj::create(nj::BACKEND_DEFAULT).unwrap();
    let s = nj::state_create(h).unwrap();
    let data = [c.jpeg.as_slice()];
    let mut dst = [NvjpegImage::interleaved(b.ptr as *mut u8, 48)];
    // Not initialised, then initialised for two.
    let e = unsafe { nj::decode_batched(h, s, &data, &mut dst, g.cu_stream()) }.unwrap_err();
    assert_eq!(e.status, 2, "{e}");
    unsafe { nj::decode_batched_initialize(h, s, 2, 1, nj::OUTPUT_RGBI) }.unwrap();
    let e = unsafe { nj::decode_batched(h, s, &data, &mut dst, g.cu_stream()) }.unwrap_err();
    assert_eq!(e.status, 2, "{e}");
    assert!(
        format!("{e}").starts_with("NVJPEG_STATUS_INVALID_PARAMETER (2)"),
        "{e}"
    );
    unsafe { nj::state_destroy(s) }.unwrap();
    unsafe { nj::destroy(h) }.unwrap();
}

/// Decodes `data` as a batch into fresh buffers of `bytes` each at `pitch`; the error.
fn batch_error(
    g: &Arc<Gpu>,
    backend: i32,
    data: &[&[u8]],
    bytes: &[usize],
    pitch: &[usize],
) -> nj::NvjpegError {
    let h = nj::create(backend).unwrap();
    let s = nj::state_create(h).unwrap();
    unsafe { nj::decode_batched_initialize(h, s, data.len() as i32, 1, nj::OUTPUT_RGBI) }.unwrap();
    let bufs: Vec<Buf> = bytes.iter().map(|&n| Buf::new(g, n)).collect();
    let mut dst: Vec<NvjpegImage> = bufs
        .iter()
        .zip(pitch)
        .map(|(b, &p)| NvjpegImage::interleaved(b.ptr as *mut u8, p))
        .collect();
    let e = unsafe { nj::decode_batched(h, s, data, &mut dst, g.cu_stream()) }.unwrap_err();
    // A refused batch wrote nothing.
    for b in &bufs {
        assert!(
            b.read(0, 1).is_err(),
            "a refused batch wrote its first destination"
        );
    }
    unsafe { nj::state_destroy(s) }.unwrap();
    unsafe { nj::destroy(h) }.unwrap();
    e
}

#[test]
fn the_emulation_refuses_what_nvjpeg_refuses() {
    let Some(g) = setup() else { return };
    if !emulated() {
        println!("skipped: the refusals write out of bounds or use freed states on a GPU");
        return;
    }
    let mut rng = Rng::new(74);
    let a = Case::new(20, 10, false, &mut rng);
    let b = Case::new(7, 5, true, &mut rng);
    let (na, nb) = (a.h * a.w * 3, b.h * b.w * 3);
    let both = [a.jpeg.as_slice(), b.jpeg.as_slice()];
    let (pa, pb) = (a.w * 3, b.w * 3);

    // The second destination one byte short: nothing written, the first included.
    let e = batch_error(&g, 0, &both, &[na, nb - 1], &[pa, pb]);
    assert_eq!(e.status, 2, "{e}");
    assert!(e.detail.contains("destinations[1].channel[0]"), "{e}");
    // A pitch below 3·width.
    let e = batch_error(&g, 0, &both, &[na, nb], &[pa - 1, pb]);
    assert_eq!(e.status, 2, "{e}");
    assert!(e.detail.contains("destinations[0].pitch[0]"), "{e}");
    // A corrupt JPEG (its tables overwritten), then a truncated one.
    let mut bad = a.jpeg.clone();
    bad[2..40].fill(0x12);
    let e = batch_error(&g, 0, &[&b.jpeg, &bad], &[nb, na], &[pb, pa]);
    assert_eq!(e.status, 3, "{e}");
    assert!(e.detail.contains("image 1"), "{e}");
    let cut = &a.jpeg[..a.jpeg.len() / 2];
    let e = batch_error(&g, 0, &[cut], &[na], &[pa]);
    assert!(e.status == 10 || e.status == 3, "{e}");
    // Not a JPEG at all.
    let e = batch_error(&g, 0, &[&b"GIF89a........"[..]], &[na], &[pa]);
    assert_eq!(e.status, 3, "{e}");

    // A destroyed state and a destroyed handle; a state of another handle.
    let h = nj::create(nj::BACKEND_DEFAULT).unwrap();
    let s = nj::state_create(h).unwrap();
    unsafe { nj::decode_batched_initialize(h, s, 1, 1, nj::OUTPUT_RGBI) }.unwrap();
    unsafe { nj::state_destroy(s) }.unwrap();
    let buf = Buf::new(&g, na);
    let mut dst = [NvjpegImage::interleaved(buf.ptr as *mut u8, pa)];
    let e = unsafe { nj::decode_batched(h, s, &[&a.jpeg], &mut dst, g.cu_stream()) }.unwrap_err();
    assert_eq!(e.status, 2, "{e}");
    assert!(
        e.detail.contains("state") && e.detail.contains("not a live"),
        "{e}"
    );
    let e = unsafe { nj::state_destroy(s) }.unwrap_err();
    assert_eq!(e.status, 2, "{e}");
    let other = nj::create(nj::BACKEND_DEFAULT).unwrap();
    let s2 = nj::state_create(other).unwrap();
    let e = unsafe { nj::decode(h, s2, &a.jpeg, nj::OUTPUT_RGBI, &mut dst[0], g.cu_stream()) }
        .unwrap_err();
    assert_eq!(e.status, 2, "{e}");
    unsafe { nj::state_destroy(s2) }.unwrap();
    unsafe { nj::destroy(other) }.unwrap();
    unsafe { nj::destroy(h) }.unwrap();
    let e = nj::state_create(h).unwrap_err();
    assert_eq!(e.status, 2, "{e}");
    assert!(e.detail.contains("handle"), "{e}");
    let e = nj::image_info(h, &a.jpeg).unwrap_err();
    assert_eq!(e.status, 2, "{e}");

    // Backends and output formats.
    let e = nj::create(1).unwrap_err();
    assert_eq!(e.status, 2, "{e}");
    let h = nj::create(nj::BACKEND_DEFAULT).unwrap();
    let s = nj::state_create(h).unwrap();
    let e = unsafe { nj::decode(h, s, &a.jpeg, 3, &mut dst[0], g.cu_stream()) }.unwrap_err();
    assert_eq!(e.status, 9, "{e}");
    assert!(e.detail.contains("RGBI"), "{e}");
    let e = unsafe { nj::decode_batched_initialize(h, s, 1, 1, 42) }.unwrap_err();
    assert_eq!(e.status, 2, "{e}");
    unsafe { nj::decode_batched_initialize(h, s, 1, 1, 3) }.unwrap();
    let e = unsafe { nj::decode_batched(h, s, &[&a.jpeg], &mut dst, g.cu_stream()) }.unwrap_err();
    assert_eq!(e.status, 9, "{e}");
    unsafe { nj::state_destroy(s) }.unwrap();
    unsafe { nj::destroy(h) }.unwrap();
}

/// A progressive JPEG, by hand (`image` writes baseline only): 16x8 gray, 8-bit, one DC-only
/// first scan (successive approximation off), every DC difference 0, so every pixel is 128.
fn progressive_gray() -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8];
    // DQT: table 0, 8-bit, all ones.
    j.extend([0xFF, 0xDB, 0x00, 0x43, 0x00]);
    j.extend([1u8; 64]);
    // SOF2: precision 8, height 8, width 16, one component (id 1, 1x1, table 0).
    j.extend([0xFF, 0xC2, 0x00, 0x0B, 8, 0, 8, 0, 16, 1, 1, 0x11, 0]);
    // DHT: DC table 0, one code of length 1 for category 0.
    j.extend([0xFF, 0xC4, 0x00, 0x14, 0x00, 1]);
    j.extend([0u8; 15]);
    j.push(0);
    // SOS: one component, DC table 0, Ss 0, Se 0, Ah 0, Al 0.
    j.extend([0xFF, 0xDA, 0x00, 0x08, 1, 1, 0x00, 0, 0, 0]);
    // Two blocks, each category 0 (code `0`), padded with ones.
    j.push(0b0011_1111);
    j.extend([0xFF, 0xD9]);
    j
}

#[test]
fn the_hardware_backend_refuses_a_progressive_jpeg() {
    let Some(g) = setup() else { return };
    if !emulated() {
        println!("skipped: a check of the emulation's HARDWARE backend");
        return;
    }
    let p = progressive_gray();
    assert_eq!(cpu_decode(&p), vec![128u8; 16 * 8 * 3]);
    let e = batch_error(&g, nj::BACKEND_HARDWARE, &[&p], &[16 * 8 * 3], &[48]);
    assert_eq!(e.status, 4, "{e}");
    assert!(e.detail.contains("progressive"), "{e}");
    // The DEFAULT backend decodes it.
    let h = nj::create(nj::BACKEND_DEFAULT).unwrap();
    let s = nj::state_create(h).unwrap();
    let b = Buf::new(&g, 16 * 8 * 3);
    let mut dst = NvjpegImage::interleaved(b.ptr as *mut u8, 48);
    unsafe { nj::decode(h, s, &p, nj::OUTPUT_RGBI, &mut dst, g.cu_stream()) }.unwrap();
    assert_eq!(b.read(0, 16 * 8 * 3).unwrap(), vec![128u8; 16 * 8 * 3]);
    unsafe { nj::state_destroy(s) }.unwrap();
    unsafe { nj::destroy(h) }.unwrap();
}

/// Run by [`hiding_the_emulated_nvjpeg`] in a child process with `SIMCLR_EMU_NO_NVJPEG=1`.
#[test]
#[ignore = "run by hiding_the_emulated_nvjpeg in a child process"]
fn hidden_nvjpeg_child() {
    assert_eq!(
        nj::available().unwrap_err(),
        "nvJPEG hidden by SIMCLR_EMU_NO_NVJPEG=1"
    );
    assert!(nj::create(nj::BACKEND_DEFAULT).is_err());
}

#[test]
fn hiding_the_emulated_nvjpeg() {
    if setup().is_none() || !emulated() {
        return;
    }
    run_child_test(
        "hidden_nvjpeg_child",
        &[("SIMCLR_EMU_NO_NVJPEG", "1".into())],
    );
}

/// The HARDWARE backend's handle, or `None` (printed) where the GPU has no JPEG engines.
fn hardware() -> Option<nj::NvjpegHandle> {
    match nj::create(nj::BACKEND_HARDWARE) {
        Ok(h) => Some(h),
        Err(e) if !emulated() => {
            println!("skipped: no HARDWARE backend on this GPU: {e}");
            None
        }
        Err(e) => panic!("the emulated H200 has the HARDWARE backend: {e}"),
    }
}

/// `jpeg` parsed into `js` with `h`, and nvjpegDecodeBatchedSupported's answer.
fn supported(h: nj::NvjpegHandle, js: nj::NvjpegJpegStream, jpeg: &[u8]) -> bool {
    nj::jpeg_stream_parse_header(h, jpeg, js).unwrap();
    nj::decode_batched_supported(h, js).unwrap()
}

#[test]
fn the_hardware_backend_says_which_jpegs_its_batched_decode_takes() {
    let Some(g) = setup() else { return };
    let Some(h) = hardware() else { return };
    let mut rng = Rng::new(75);
    let rgb = Case::new(33, 20, false, &mut rng);
    let gray = Case::new(12, 40, true, &mut rng);
    let progressive = progressive_gray_jpeg(24, 16, &mut rng);
    let cmyk = cmyk_jpeg(16, 24, &mut rng);
    // One JPEG stream for every image, as the decoder reuses it.
    let js = nj::jpeg_stream_create(h).unwrap();
    let answers = [
        ("baseline RGB", &rgb.jpeg[..], true),
        ("progressive", &progressive[..], false),
        ("baseline gray", &gray.jpeg[..], true),
        ("CMYK", &cmyk[..], false),
    ];
    for (what, jpeg, want) in answers {
        assert_eq!(supported(h, js, jpeg), want, "{what}");
    }
    if emulated() {
        // The batched decode takes exactly those: each image alone, in a batch of one.
        let s = nj::state_create(h).unwrap();
        let b = Buf::new(&g, 40 * 40 * 3);
        for (what, jpeg, want) in answers {
            unsafe { nj::decode_batched_initialize(h, s, 1, 1, nj::OUTPUT_RGBI) }.unwrap();
            let (_, w, _) = nj::image_info(h, jpeg).unwrap();
            let mut dst = [NvjpegImage::interleaved(
                b.ptr as *mut u8,
                3 * w[0] as usize,
            )];
            let r = unsafe { nj::decode_batched(h, s, &[jpeg], &mut dst, g.cu_stream()) };
            match r {
                Ok(()) => assert!(want, "{what}: decoded, yet called unsupported"),
                Err(e) => {
                    assert!(!want, "{what}: called supported, yet refused: {e}");
                    assert_eq!(e.status, nj::STATUS_JPEG_NOT_SUPPORTED, "{what}: {e}");
                }
            }
        }
        unsafe { nj::state_destroy(s) }.unwrap();
    }
    unsafe { nj::jpeg_stream_destroy(js) }.unwrap();
    unsafe { nj::destroy(h) }.unwrap();
}

#[test]
fn the_emulation_refuses_misused_jpeg_streams() {
    let Some(_g) = setup() else { return };
    if !emulated() {
        println!("skipped: the refusals use destroyed and unparsed streams");
        return;
    }
    let mut rng = Rng::new(76);
    let a = Case::new(20, 10, false, &mut rng);
    let h = nj::create(nj::BACKEND_HARDWARE).unwrap();
    let js = nj::jpeg_stream_create(h).unwrap();
    // Asked before any parse.
    let e = nj::decode_batched_supported(h, js).unwrap_err();
    assert_eq!(e.status, nj::STATUS_INVALID_PARAMETER, "{e}");
    assert!(e.detail.contains("no parsed header"), "{e}");
    // Parsed, then a failed parse: the stream no longer answers for the first image.
    assert!(supported(h, js, &a.jpeg));
    let e = nj::jpeg_stream_parse_header(h, b"GIF89a........", js).unwrap_err();
    assert_eq!(e.status, nj::STATUS_BAD_JPEG, "{e}");
    let e = nj::decode_batched_supported(h, js).unwrap_err();
    assert_eq!(e.status, nj::STATUS_INVALID_PARAMETER, "{e}");
    // Empty and truncated data.
    let e = nj::jpeg_stream_parse_header(h, &[], js).unwrap_err();
    assert_eq!(e.status, nj::STATUS_INVALID_PARAMETER, "{e}");
    let e = nj::jpeg_stream_parse_header(h, &a.jpeg[..8], js).unwrap_err();
    assert_eq!(e.status, nj::STATUS_INCOMPLETE_BITSTREAM, "{e}");
    // A stream of another handle.
    let other = nj::create(nj::BACKEND_HARDWARE).unwrap();
    let e = nj::jpeg_stream_parse_header(other, &a.jpeg, js).unwrap_err();
    assert_eq!(e.status, nj::STATUS_INVALID_PARAMETER, "{e}");
    assert!(e.detail.contains("created with handle"), "{e}");
    // The DEFAULT backend answers for its own decode: progressive yes, CMYK no.
    let d = nj::create(nj::BACKEND_DEFAULT).unwrap();
    let djs = nj::jpeg_stream_create(d).unwrap();
    assert!(supported(d, djs, &progressive_gray_jpeg(16, 8, &mut rng)));
    assert!(!supported(d, djs, &cmyk_jpeg(8, 8, &mut rng)));
    unsafe { nj::jpeg_stream_destroy(djs) }.unwrap();
    unsafe { nj::destroy(d) }.unwrap();
    // Destroyed: every use refused, a second destroy too.
    unsafe { nj::jpeg_stream_destroy(js) }.unwrap();
    let e = nj::jpeg_stream_parse_header(h, &a.jpeg, js).unwrap_err();
    assert!(e.status == 2 && e.detail.contains("not a live"), "{e}");
    let e = nj::decode_batched_supported(h, js).unwrap_err();
    assert_eq!(e.status, nj::STATUS_INVALID_PARAMETER, "{e}");
    let e = unsafe { nj::jpeg_stream_destroy(js) }.unwrap_err();
    assert_eq!(e.status, nj::STATUS_INVALID_PARAMETER, "{e}");
    // A destroyed handle makes no streams.
    unsafe { nj::destroy(other) }.unwrap();
    let e = nj::jpeg_stream_create(other).unwrap_err();
    assert!(e.status == 2 && e.detail.contains("handle"), "{e}");
    unsafe { nj::destroy(h) }.unwrap();
}

#[cfg(feature = "cuda-emu")]
#[test]
fn the_emulated_preallocation_is_checked_and_recorded() {
    use simclr::cuda::emu::nvjpeg::{preallocation, PreAllocation};
    let Some(g) = setup() else { return };
    if !emulated() {
        return;
    }
    let h = nj::create(nj::BACKEND_HARDWARE).unwrap();
    let s = nj::state_create(h).unwrap();
    let pre = |b, w, hh, css, f| unsafe { nj::decode_batched_pre_allocate(h, s, b, w, hh, css, f) };
    let rgbi = nj::OUTPUT_RGBI;
    for (args, what) in [
        ((0, 8, 8, nj::CSS_444, rgbi), "batch_size = 0"),
        ((2, 0, 8, nj::CSS_444, rgbi), "width = 0"),
        ((2, 8, -1, nj::CSS_444, rgbi), "height = -1"),
        ((2, 8, 8, nj::CSS_UNKNOWN, rgbi), "chroma subsampling -1"),
        ((2, 8, 8, 8, rgbi), "chroma subsampling 8"),
        ((2, 8, 8, nj::CSS_444, 42), "output format 42"),
    ] {
        let (b, w, hh, css, f) = args;
        let e = pre(b, w, hh, css, f).unwrap_err();
        assert_eq!(e.status, nj::STATUS_INVALID_PARAMETER, "{e}");
        assert!(e.detail.contains(what), "{e}");
    }
    assert_eq!(preallocation(s), None, "a refused call records nothing");
    // Before nvjpegDecodeBatchedInitialize (nvJPEG does not ask for it first), then again.
    pre(2, 8, 8, nj::CSS_420, rgbi).unwrap();
    pre(2, 16, 9, nj::CSS_444, rgbi).unwrap();
    let want = PreAllocation {
        batch_size: 2,
        width: 16,
        height: 9,
        chroma_subsampling: nj::CSS_444,
        output_format: rgbi,
        calls: 2,
    };
    assert_eq!(preallocation(s), Some(want));
    // Buffers the device cannot hold (2·10^11 bytes): refused, and the state keeps what it had.
    let e = pre(20, 50_000, 50_000, nj::CSS_420, rgbi).unwrap_err();
    assert_eq!(e.status, nj::STATUS_ALLOCATOR_FAILURE, "{e}");
    assert!(e.detail.contains("75000000000 bytes"), "{e}");
    assert_eq!(preallocation(s), Some(want));
    // A hint: images larger than it still decode.
    let mut rng = Rng::new(77);
    let cases = [
        Case::new(53, 37, false, &mut rng),
        Case::new(31, 120, true, &mut rng),
    ];
    unsafe { nj::decode_batched_initialize(h, s, 2, 1, rgbi) }.unwrap();
    let bufs: Vec<Buf> = cases.iter().map(|c| Buf::new(&g, c.h * c.w * 3)).collect();
    let mut dst: Vec<NvjpegImage> = bufs
        .iter()
        .zip(&cases)
        .map(|(b, c)| NvjpegImage::interleaved(b.ptr as *mut u8, 3 * c.w))
        .collect();
    let data: Vec<&[u8]> = cases.iter().map(|c| c.jpeg.as_slice()).collect();
    unsafe { nj::decode_batched(h, s, &data, &mut dst, g.cu_stream()) }.unwrap();
    for (i, (b, c)) in bufs.iter().zip(&cases).enumerate() {
        assert_like_cpu(&rows(b, c, 3 * c.w), c, &format!("image {i}"));
    }
    // A state of another handle, a destroyed state.
    let other = nj::create(nj::BACKEND_HARDWARE).unwrap();
    let e = unsafe { nj::decode_batched_pre_allocate(other, s, 1, 8, 8, nj::CSS_444, rgbi) }
        .unwrap_err();
    assert_eq!(e.status, nj::STATUS_INVALID_PARAMETER, "{e}");
    unsafe { nj::destroy(other) }.unwrap();
    unsafe { nj::state_destroy(s) }.unwrap();
    let e = pre(1, 8, 8, nj::CSS_444, rgbi).unwrap_err();
    assert!(e.status == 2 && e.detail.contains("not a live"), "{e}");
    unsafe { nj::destroy(h) }.unwrap();
    // The DEFAULT backend: accepted, and a no-op (nothing recorded).
    let d = nj::create(nj::BACKEND_DEFAULT).unwrap();
    let ds = nj::state_create(d).unwrap();
    unsafe { nj::decode_batched_pre_allocate(d, ds, 4, 64, 64, nj::CSS_444, rgbi) }.unwrap();
    assert_eq!(preallocation(ds), None);
    unsafe { nj::state_destroy(ds) }.unwrap();
    unsafe { nj::destroy(d) }.unwrap();
}
