//! Decoding one file to RGB u8 at the smallest size its crops need.
//!
//! JPEGs go through `jpeg-decoder`, which can run the inverse DCT at 1/2, 1/4 or 1/8 scale:
//! a random crop of 8% of a 2000x1500 photo resized to 224 px needs only about a quarter of
//! the pixels, and decoding at reduced scale skips most of the work. The caller says what it
//! needs through `want(full_h, full_w) -> (need_h, need_w)` in displayed (EXIF-oriented)
//! pixels; we pick the largest reduction that still covers it. Grayscale and CMYK are
//! converted to RGB; whether three components are RGB or YCbCr follows libjpeg's rule
//! ([`super::jpeg_colour`]); the EXIF orientation is applied. Other formats (PNG) use `image`.

use super::jpeg_colour::{colour_markers, transform_for};
use super::orient::{apply_orientation, exif_orientation, swaps_axes};
use crate::data::dataset::Image;
use crate::{Error, Result};
use std::borrow::Cow;
use std::path::Path;

/// Refuse images whose decoded pixels would pass this (a 16k x 16k RGB photo is 768 MiB).
pub(crate) const MAX_DECODED_BYTES: usize = 1 << 30;

/// A decoded image and the displayed size of the full-resolution picture it was reduced from.
pub struct Decoded {
    pub image: Image<'static>,
    pub full: (usize, usize),
}

fn bad(path: &Path, msg: String) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        msg,
    }
}

/// Output side of a length-`len` axis at IDCT size `k` (scale k/8), as the decoder rounds it.
fn scaled(len: usize, k: usize) -> usize {
    (len * k).div_ceil(8)
}

fn to_rgb(px: Vec<u8>, format: jpeg_decoder::PixelFormat) -> Vec<u8> {
    use jpeg_decoder::PixelFormat as F;
    match format {
        F::RGB24 => px,
        F::L8 => px.iter().flat_map(|&v| [v, v, v]).collect(),
        // Big-endian 16-bit samples: keep the high byte.
        F::L16 => px
            .chunks_exact(2)
            .flat_map(|v| [v[0], v[0], v[0]])
            .collect(),
        // The decoder undoes Adobe's inversion: values are ink amounts, 255 = full ink.
        F::CMYK32 => px
            .chunks_exact(4)
            .flat_map(|p| {
                let k = 255 - p[3] as u32;
                [0, 1, 2].map(|i| ((255 - p[i] as u32) * k / 255) as u8)
            })
            .collect(),
    }
}

fn decode_jpeg(
    path: &Path,
    bytes: &[u8],
    want: &dyn Fn(usize, usize) -> (usize, usize),
) -> Result<Decoded> {
    let err = |e: jpeg_decoder::Error| bad(path, format!("cannot decode JPEG: {e}"));
    let mut d = jpeg_decoder::Decoder::new(bytes);
    d.set_max_decoding_buffer_size(MAX_DECODED_BYTES);
    d.read_info().map_err(err)?;
    // RGB or YCbCr as libjpeg (and so Pillow) decides, not as `jpeg-decoder` guesses.
    if let Some(t) = colour_markers(bytes).as_ref().and_then(transform_for) {
        d.set_color_transform(t);
    }
    let info = d
        .info()
        .ok_or_else(|| bad(path, "JPEG without a frame header".into()))?;
    let (sh, sw) = (info.height as usize, info.width as usize);
    if sh == 0 || sw == 0 {
        return Err(bad(path, format!("image has an empty size {sw}x{sh}")));
    }
    let o = d.exif_data().map_or(1, exif_orientation);
    let full = if swaps_axes(o) { (sw, sh) } else { (sh, sw) };
    let (nh, nw) = want(full.0, full.1);
    let (qh, qw) = if swaps_axes(o) { (nw, nh) } else { (nh, nw) };
    // The smallest IDCT size (1/8, 1/4, 1/2) whose output still covers the need on both axes.
    if let Some(k) = [1, 2, 4]
        .into_iter()
        .find(|&k| scaled(sw, k) >= qw && scaled(sh, k) >= qh)
    {
        d.scale(scaled(sw, k) as u16, scaled(sh, k) as u16)
            .map_err(err)?;
    }
    let px = d.decode().map_err(err)?;
    let info = d
        .info()
        .ok_or_else(|| bad(path, "JPEG without a frame header".into()))?;
    let (h, w) = (info.height as usize, info.width as usize);
    let rgb = to_rgb(px, info.pixel_format);
    if rgb.len() != h * w * 3 {
        return Err(bad(
            path,
            format!("decoded {} bytes for a {w}x{h} image", rgb.len()),
        ));
    }
    let image = Image {
        height: h,
        width: w,
        channels: 3,
        data: Cow::Owned(rgb),
    };
    Ok(Decoded {
        image: apply_orientation(image, o),
        full,
    })
}

fn decode_other(path: &Path, bytes: &[u8]) -> Result<Decoded> {
    let img = image::load_from_memory(bytes)
        .map_err(|e| bad(path, format!("cannot decode image: {e}")))?
        .to_rgb8();
    let (h, w) = (img.height() as usize, img.width() as usize);
    if h == 0 || w == 0 {
        return Err(bad(path, format!("image has an empty size {w}x{h}")));
    }
    Ok(Decoded {
        image: Image {
            height: h,
            width: w,
            channels: 3,
            data: Cow::Owned(img.into_raw()),
        },
        full: (h, w),
    })
}

/// Reads and decodes `path`; every failure (including a panic inside a decoder on hostile
/// input) is an `Error::Data` naming the file.
pub fn decode_path(path: &Path, want: &dyn Fn(usize, usize) -> (usize, usize)) -> Result<Decoded> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_bytes(path, &bytes, want)
}

/// [`decode_path`] of bytes already read from `path`.
pub fn decode_bytes(
    path: &Path,
    bytes: &[u8],
    want: &dyn Fn(usize, usize) -> (usize, usize),
) -> Result<Decoded> {
    let run = || {
        if bytes.starts_with(&[0xFF, 0xD8]) {
            decode_jpeg(path, bytes, want)
        } else {
            decode_other(path, bytes)
        }
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
        .unwrap_or_else(|_| Err(bad(path, "the decoder failed on malformed data".into())))
}
