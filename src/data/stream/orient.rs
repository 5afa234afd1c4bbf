//! EXIF orientation: cameras store pixels as the sensor saw them and record in tag 0x0112 how
//! to turn them for display (1..=8, the TIFF convention). We read that one tag from the TIFF
//! block and apply it, so crops and labels see the picture a viewer would show.

use crate::data::dataset::Image;
use std::borrow::Cow;

/// The orientation tag (1..=8) of an EXIF block starting at the TIFF header; 1 when absent or
/// unreadable (a broken EXIF block is not worth refusing an image for).
pub fn exif_orientation(tiff: &[u8]) -> u8 {
    let le = match tiff.get(..4) {
        Some(b"II*\0") => true,
        Some(b"MM\0*") => false,
        _ => return 1,
    };
    let u16_at = |o: usize| {
        tiff.get(o..o + 2).map(|b| {
            let b = [b[0], b[1]];
            if le {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            }
        })
    };
    let u32_at = |o: usize| {
        tiff.get(o..o + 4).map(|b| {
            let b = [b[0], b[1], b[2], b[3]];
            if le {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        })
    };
    let Some(ifd) = u32_at(4).map(|o| o as usize) else {
        return 1;
    };
    let n = u16_at(ifd).unwrap_or(0) as usize;
    for k in 0..n {
        let e = ifd + 2 + 12 * k;
        if u16_at(e) == Some(0x0112) {
            // Type SHORT, count 1: the value sits in the first two bytes of the value field.
            return match u16_at(e + 8) {
                Some(v @ 1..=8) => v as u8,
                _ => 1,
            };
        }
    }
    1
}

/// Whether orientation `o` swaps width and height (the transposing ones, 5..=8).
pub fn swaps_axes(o: u8) -> bool {
    (5..=8).contains(&o)
}

/// The displayed image for stored pixels `img` and orientation `o`.
pub fn apply_orientation(img: Image<'static>, o: u8) -> Image<'static> {
    if !(2..=8).contains(&o) {
        return img;
    }
    let (h, w, c) = (img.height, img.width, img.channels);
    let (dh, dw) = if swaps_axes(o) { (w, h) } else { (h, w) };
    let mut out = vec![0u8; h * w * c];
    for y in 0..dh {
        for x in 0..dw {
            // The stored pixel shown at displayed (y, x).
            let (sy, sx) = match o {
                2 => (y, w - 1 - x),
                3 => (h - 1 - y, w - 1 - x),
                4 => (h - 1 - y, x),
                5 => (x, y),
                6 => (h - 1 - x, y),
                7 => (h - 1 - x, w - 1 - y),
                _ => (x, w - 1 - y),
            };
            let (d, s) = ((y * dw + x) * c, (sy * w + sx) * c);
            out[d..d + c].copy_from_slice(&img.data[s..s + c]);
        }
    }
    Image {
        height: dh,
        width: dw,
        channels: c,
        data: Cow::Owned(out),
    }
}
