//! Generated image folders for tests and measurements of the streaming pipeline: smooth
//! pictures with a little noise (so JPEG sizes are photo-like), in ImageNet's layout, mixing
//! JPEG and PNG, sizes drawn per file; plus the awkward cases real folders contain (grayscale
//! JPEGs, EXIF-rotated JPEGs, truncated files). CMYK JPEGs, which `image` cannot encode, come
//! from `tests/fixtures/images/make_cmyk.py`.

use crate::{Error, Result, Rng};
use std::path::{Path, PathBuf};

/// A smooth random RGB picture.
pub fn picture(h: u32, w: u32, rng: &mut Rng) -> image::RgbImage {
    picture_with_noise(h, w, 12, rng)
}

/// [`picture`] with its fixed per-pixel noise pattern drawn below `levels` (1: none, a smooth
/// picture, which resamples the same whatever the filter).
pub fn picture_with_noise(h: u32, w: u32, levels: usize, rng: &mut Rng) -> image::RgbImage {
    let (a, b, p) = (
        rng.range(1.0, 8.0),
        rng.range(1.0, 8.0),
        rng.range(0.0, 6.3),
    );
    let noise: Vec<u8> = (0..64).map(|_| rng.below(levels.max(1)) as u8).collect();
    image::RgbImage::from_fn(w, h, |x, y| {
        let t = (x as f64 / w as f64 * a + p).sin() + (y as f64 / h as f64 * b).cos();
        let v = ((t + 2.0) * 60.0) as u8;
        let n = noise[((x * 7 + y * 13) % 64) as usize];
        image::Rgb([v.wrapping_add(n), 255 - v, (v / 2).wrapping_add(2 * n)])
    })
}

/// JPEG bytes of `img` (RGB or grayscale) at `quality`.
pub fn jpeg_bytes(img: &image::DynamicImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    img.write_with_encoder(enc)
        .expect("encoding to memory does not fail");
    out
}

/// `jpeg` with an EXIF APP1 segment (little-endian TIFF, one IFD entry: orientation `o`)
/// inserted after the start-of-image marker.
pub fn with_exif_orientation(jpeg: &[u8], o: u16) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend(8u32.to_le_bytes()); // first IFD right after the header
    tiff.extend(1u16.to_le_bytes()); // one entry
    tiff.extend(0x0112u16.to_le_bytes()); // orientation
    tiff.extend(3u16.to_le_bytes()); // SHORT
    tiff.extend(1u32.to_le_bytes()); // count
    tiff.extend(o.to_le_bytes());
    tiff.extend([0, 0]);
    tiff.extend(0u32.to_le_bytes()); // no next IFD
    let mut seg = b"Exif\0\0".to_vec();
    seg.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((seg.len() + 2) as u16).to_be_bytes());
    out.extend(seg);
    out.extend(&jpeg[2..]);
    out
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// What to write: `classes` x `per_class` files per split, sides drawn in `sides`.
#[derive(Clone, Debug)]
pub struct SynthFolder {
    pub classes: usize,
    pub per_class: usize,
    pub sides: (u32, u32),
    /// Every k-th file a PNG (0: none).
    pub png_every: usize,
    /// Every k-th file a grayscale JPEG, every k-th an EXIF-rotated one (0: none).
    pub gray_every: usize,
    pub exif_every: usize,
    pub quality: u8,
}

/// Writes `root/<split>/c<k>/<i>.{JPEG,png}`; returns the files written, in listing order.
pub fn write_split(
    root: &Path,
    split: &str,
    s: &SynthFolder,
    rng: &mut Rng,
) -> Result<Vec<PathBuf>> {
    let every = |k: usize, i: usize| k > 0 && i % k == k - 1;
    let mut files = Vec::new();
    for c in 0..s.classes {
        let dir = root.join(split).join(format!("c{c:03}"));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        for i in 0..s.per_class {
            let h = s.sides.0 + rng.below((s.sides.1 - s.sides.0 + 1) as usize) as u32;
            let w = s.sides.0 + rng.below((s.sides.1 - s.sides.0 + 1) as usize) as u32;
            let pic = image::DynamicImage::ImageRgb8(picture(h, w, rng));
            let (name, bytes) = if every(s.png_every, i) {
                let mut out = std::io::Cursor::new(Vec::new());
                pic.write_to(&mut out, image::ImageFormat::Png)
                    .expect("encoding to memory does not fail");
                (format!("{i:05}.png"), out.into_inner())
            } else if every(s.gray_every, i) {
                let gray = image::DynamicImage::ImageLuma8(pic.to_luma8());
                (format!("{i:05}.JPEG"), jpeg_bytes(&gray, s.quality))
            } else if every(s.exif_every, i) {
                let o = 2 + rng.below(7) as u16;
                let j = jpeg_bytes(&pic, s.quality);
                (format!("{i:05}.JPEG"), with_exif_orientation(&j, o))
            } else {
                (format!("{i:05}.JPEG"), jpeg_bytes(&pic, s.quality))
            };
            let path = dir.join(name);
            write(&path, &bytes)?;
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
