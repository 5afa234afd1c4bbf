//! JPEGs left encoded for the GPU's decoder (`--decode-on gpu`, nvJPEG): a worker reads the
//! file and checks, from its headers alone, that nvJPEG will produce the picture the CPU path
//! would (its pixels differ by a few levels: another IDCT and chroma upsampling): 8-bit
//! sequential (baseline) coding, one or three components, no EXIF rotation (nvJPEG ignores
//! EXIF), YCbCr (no marker saying RGB), a complete stream (it ends with the end-of-image
//! marker), within the decode size limit. Anything else (PNG, progressive, CMYK, RGB-coded,
//! rotated, truncated) is decoded on the CPU
//! as before, where an unreadable file meets `--bad-images`.

use super::decode::MAX_DECODED_BYTES;
use super::jpeg_colour::colour_markers;
use super::orient::exif_orientation;
use std::path::PathBuf;
use std::sync::Arc;

/// A JPEG the GPU decodes, full size, to `size` (height, width) RGB.
#[derive(Clone, Debug)]
pub struct EncodedJpeg {
    pub bytes: Arc<[u8]>,
    pub size: (usize, usize),
    /// The file, for messages.
    pub path: PathBuf,
}

/// Whether `bytes` ends with the end-of-image marker (trailing zero padding allowed).
fn complete(bytes: &[u8]) -> bool {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    end >= 2 && bytes[end - 2..end] == [0xFF, 0xD9]
}

/// The (height, width) nvJPEG will decode `bytes` to, or why the file stays with the CPU
/// decoder. Reads the headers only, so the caller keeps the bytes either way.
pub fn gpu_decodable(bytes: &[u8]) -> Result<(usize, usize), &'static str> {
    use jpeg_decoder::{CodingProcess, PixelFormat};
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err("not a JPEG");
    }
    if !complete(bytes) {
        return Err("no end-of-image marker (truncated)");
    }
    let mut d = jpeg_decoder::Decoder::new(bytes);
    // Headers only; a decoder panic on hostile input is a "no" like any other.
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.read_info().is_ok()));
    if !read.unwrap_or(false) {
        return Err("unreadable header");
    }
    let info = d.info().ok_or("no frame header")?;
    if !matches!(info.pixel_format, PixelFormat::L8 | PixelFormat::RGB24) {
        return Err("CMYK or 16-bit samples");
    }
    // nvJPEG converts three components from YCbCr; whether it reads the markers that say RGB
    // is not documented, so a file any of them marks as RGB stays with the CPU decoder.
    let colour = colour_markers(bytes).ok_or("unreadable header")?;
    if colour.hints_rgb() {
        return Err("RGB samples (Adobe transform 0 or component ids 'R', 'G', 'B')");
    }
    if info.coding_process != CodingProcess::DctSequential {
        return Err("progressive or lossless coding");
    }
    if d.exif_data().map_or(1, exif_orientation) != 1 {
        return Err("EXIF-rotated");
    }
    let (h, w) = (info.height as usize, info.width as usize);
    if h == 0 || w == 0 || h * w * 3 > MAX_DECODED_BYTES {
        return Err("empty or too large");
    }
    Ok((h, w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::stream::synth::{jpeg_bytes, picture, with_exif_orientation};
    use crate::Rng;

    fn jpeg(gray: bool) -> Vec<u8> {
        let pic = image::DynamicImage::ImageRgb8(picture(30, 41, &mut Rng::new(3)));
        let pic = if gray {
            image::DynamicImage::ImageLuma8(pic.to_luma8())
        } else {
            pic
        };
        jpeg_bytes(&pic, 90)
    }

    fn why(bytes: Vec<u8>) -> Option<&'static str> {
        gpu_decodable(&bytes).err()
    }

    #[test]
    fn baseline_rgb_and_gray_go_to_the_gpu_at_full_size() {
        for gray in [false, true] {
            assert_eq!(gpu_decodable(&jpeg(gray)), Ok((30, 41)));
        }
        // Zero padding after the end-of-image marker is still a complete stream.
        let mut padded = jpeg(false);
        padded.extend([0, 0, 0]);
        assert_eq!(why(padded), None);
    }

    #[test]
    fn what_nvjpeg_would_decode_differently_stays_on_the_cpu() {
        let j = jpeg(false);
        assert_eq!(
            why(j[..j.len() / 2].to_vec()),
            Some("no end-of-image marker (truncated)")
        );
        assert_eq!(why(with_exif_orientation(&j, 6)), Some("EXIF-rotated"));
        assert_eq!(why(b"\x89PNG\r\n\x1a\n".to_vec()), Some("not a JPEG"));
        // RGB-coded (every marking of tests/fixtures/images/make_rgb_coded.py).
        for name in ["rgb_coded", "rgb_coded_ids123", "rgb_coded_jfif"] {
            let path = format!(
                "{}/tests/fixtures/images/{name}.jpg",
                env!("CARGO_MANIFEST_DIR")
            );
            assert_eq!(
                why(std::fs::read(path).unwrap()),
                Some("RGB samples (Adobe transform 0 or component ids 'R', 'G', 'B')"),
                "{name}"
            );
        }
        // A header cut short but closed with an end-of-image marker.
        assert_eq!(why(vec![0xFF, 0xD8, 0xFF, 0xD9]), Some("unreadable header"));
    }
}
