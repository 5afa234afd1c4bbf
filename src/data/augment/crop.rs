//! Crop boxes (random resized and centre) and separable resampling from u8 to f32.

use crate::data::dataset::Image;
use crate::Rng;

/// A rectangle of the source image, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropBox {
    pub y: usize,
    pub x: usize,
    pub h: usize,
    pub w: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    Bilinear,
    Bicubic,
}

/// Random resized crop: area fraction uniform in `area`, aspect ratio (w/h) log-uniform in
/// `aspect`; after 10 misses (crop not fitting), the largest centred crop whose aspect is
/// clamped into range.
pub fn random_crop_box(
    h: usize,
    w: usize,
    area: (f64, f64),
    aspect: (f64, f64),
    rng: &mut Rng,
) -> CropBox {
    let total = (h * w) as f64;
    let (la, lb) = (aspect.0.ln(), aspect.1.ln());
    for _ in 0..10 {
        let target = total * rng.range(area.0, area.1);
        let ar = rng.range(la, lb).exp();
        let cw = (target * ar).sqrt().round() as usize;
        let ch = (target / ar).sqrt().round() as usize;
        if cw > 0 && ch > 0 && cw <= w && ch <= h {
            let y = rng.below(h - ch + 1);
            let x = rng.below(w - cw + 1);
            return CropBox { y, x, h: ch, w: cw };
        }
    }
    let ratio = w as f64 / h as f64;
    let (ch, cw) = if ratio < aspect.0 {
        (((w as f64 / aspect.0).round() as usize).clamp(1, h), w)
    } else if ratio > aspect.1 {
        (h, ((h as f64 * aspect.1).round() as usize).clamp(1, w))
    } else {
        (h, w)
    };
    CropBox {
        y: (h - ch) / 2,
        x: (w - cw) / 2,
        h: ch,
        w: cw,
    }
}

/// `b`, a box on a picture of size `full`, on the same picture decoded at size `to`: the
/// smallest pixel box covering the scaled rectangle (unchanged when the sizes are equal).
pub fn map_box(b: CropBox, full: (usize, usize), to: (usize, usize)) -> CropBox {
    if full == to {
        return b;
    }
    let axis = |start: usize, len: usize, n: usize, m: usize| {
        let s = m as f64 / n as f64;
        let lo = ((start as f64 * s).floor() as usize).min(m - 1);
        let hi = (((start + len) as f64 * s).ceil() as usize).clamp(lo + 1, m);
        (lo, hi - lo)
    };
    let (y, h) = axis(b.y, b.h, full.0, to.0);
    let (x, w) = axis(b.x, b.w, full.1, to.1);
    CropBox { y, x, h, w }
}

/// The centred square whose side is `fraction` of the short side.
pub fn centre_crop_box(h: usize, w: usize, fraction: f64) -> CropBox {
    let side = ((h.min(w) as f64 * fraction).round() as usize).clamp(1, h.min(w));
    CropBox {
        y: (h - side) / 2,
        x: (w - side) / 2,
        h: side,
        w: side,
    }
}

fn kernel(interp: Interpolation, t: f64) -> f64 {
    let t = t.abs();
    match interp {
        Interpolation::Bilinear => (1.0 - t).max(0.0),
        Interpolation::Bicubic => {
            // Keys' cubic convolution with a = -0.5.
            let a = -0.5;
            if t < 1.0 {
                ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
            } else if t < 2.0 {
                (((t - 5.0) * t + 8.0) * t - 4.0) * a
            } else {
                0.0
            }
        }
    }
}

/// For each of `n_out` outputs along one axis, the source indices (clamped to the edge) and
/// normalised weights. Downscaling widens the kernel by the scale, so it also antialiases.
struct Taps {
    per: usize,
    idx: Vec<usize>,
    w: Vec<f32>,
}

fn taps(start: usize, n_in: usize, n_out: usize, limit: usize, interp: Interpolation) -> Taps {
    let scale = n_in as f64 / n_out as f64;
    let stretch = scale.max(1.0);
    let radius = match interp {
        Interpolation::Bilinear => 1.0,
        Interpolation::Bicubic => 2.0,
    } * stretch;
    let per = 2 * radius.ceil() as usize + 1;
    let (mut idx, mut w) = (
        Vec::with_capacity(n_out * per),
        Vec::with_capacity(n_out * per),
    );
    for o in 0..n_out {
        let centre = (o as f64 + 0.5) * scale - 0.5;
        let first = (centre - radius).ceil() as i64;
        let mut ws: Vec<f64> = (0..per)
            .map(|k| kernel(interp, (first + k as i64) as f64 - centre) / stretch)
            .collect();
        let sum: f64 = ws.iter().sum();
        ws.iter_mut().for_each(|v| *v /= sum);
        for (k, wk) in ws.into_iter().enumerate() {
            let i = (first + k as i64).clamp(0, n_in as i64 - 1) as usize;
            idx.push((start + i).min(limit - 1));
            w.push(wk as f32);
        }
    }
    Taps { per, idx, w }
}

/// Reverses the order of the `per`-sized chunks of `v` (mirrors the outputs of an axis).
fn reverse_chunks<T: Copy>(v: &mut Vec<T>, per: usize) {
    *v = v.chunks(per).rev().flatten().copied().collect();
}

/// Resamples the `crop` of `img` to `out_h`x`out_w` f32 values in [0, 1] (HWC), mirrored
/// left-right when `flip`. Separable: rows first, then columns.
pub fn resize_crop(
    img: &Image,
    crop: CropBox,
    out_h: usize,
    out_w: usize,
    interp: Interpolation,
    flip: bool,
    out: &mut [f32],
) {
    let c = img.channels;
    let mut tx = taps(crop.x, crop.w, out_w, img.width, interp);
    if flip {
        reverse_chunks(&mut tx.idx, tx.per);
        reverse_chunks(&mut tx.w, tx.per);
    }
    let ty = taps(crop.y, crop.h, out_h, img.height, interp);
    // Only the source rows some output row reads.
    let (r0, r1) = (
        *ty.idx.iter().min().unwrap_or(&0),
        *ty.idx.iter().max().unwrap_or(&0),
    );
    let rows = r1 - r0 + 1;
    let data = &img.data;
    let mut tmp = vec![0f32; rows * out_w * c];
    for r in 0..rows {
        let src = &data[(r0 + r) * img.width * c..(r0 + r + 1) * img.width * c];
        let dst = &mut tmp[r * out_w * c..(r + 1) * out_w * c];
        for ox in 0..out_w {
            let (ii, ww) = (
                &tx.idx[ox * tx.per..(ox + 1) * tx.per],
                &tx.w[ox * tx.per..(ox + 1) * tx.per],
            );
            for ch in 0..c {
                let mut acc = 0f32;
                for (&i, &wk) in ii.iter().zip(ww) {
                    acc += wk * src[i * c + ch] as f32;
                }
                dst[ox * c + ch] = acc;
            }
        }
    }
    let row = out_w * c;
    for oy in 0..out_h {
        let dst = &mut out[oy * row..(oy + 1) * row];
        dst.fill(0.0);
        for k in 0..ty.per {
            let (i, wk) = (ty.idx[oy * ty.per + k] - r0, ty.w[oy * ty.per + k]);
            let src = &tmp[i * row..(i + 1) * row];
            for (d, s) in dst.iter_mut().zip(src) {
                *d += wk * s;
            }
        }
        for d in dst.iter_mut() {
            *d = (*d * (1.0 / 255.0)).clamp(0.0, 1.0);
        }
    }
}
