//! The built-in dataset: procedurally drawn RGB images of ten shape classes. The class is the
//! shape alone; brightness, tint, polarity, position, scale, a small tilt and noise are random
//! per image, so raw pixels say little about the class and a network has to learn the shape.

use super::dataset::ArrayDataset;
use crate::{Error, Result, Rng};
use rayon::prelude::*;
use std::path::Path;

pub const SYNTHETIC_CLASSES: [&str; 10] = [
    "disk", "ring", "square", "triangle", "plus", "flower", "crescent", "bars", "ell", "frame",
];

/// Whether the point (u, v), in the shape's own frame where the shape spans about [-1, 1]²,
/// lies inside the shape of `class`.
fn inside(class: usize, u: f64, v: f64) -> bool {
    let r = (u * u + v * v).sqrt();
    match class {
        0 => r < 0.9,
        1 => r > 0.55 && r < 0.95,
        2 => u.abs().max(v.abs()) < 0.75,
        3 => {
            // Equilateral triangle with circumradius 1, pointing up.
            v > -0.5 && v < 1.0 - 1.732 * u.abs()
        }
        4 => (u.abs() < 0.28 && v.abs() < 0.95) || (v.abs() < 0.28 && u.abs() < 0.95),
        5 => {
            let t = v.atan2(u);
            let lobe = 0.5 + 0.5 * (5.0 * t).cos();
            r < 0.35 + 0.6 * lobe * lobe
        }
        6 => r < 0.95 && ((u - 0.45).powi(2) + v * v).sqrt() > 0.75,
        7 => (v.abs() > 0.2 && v.abs() < 0.6) && u.abs() < 0.9,
        8 => (u > -0.8 && u < -0.35 && v.abs() < 0.85) || (v > 0.4 && v < 0.85 && u.abs() < 0.8),
        _ => {
            let m = u.abs().max(v.abs());
            m > 0.5 && m < 0.85
        }
    }
}

/// A colour of luminance about `level` with a faint random tint. Colour and brightness say
/// little about which image this is, so contrastive pretraining, which must recognise each
/// image among others, cannot get by on them (colour jitter hides what remains) and has to
/// use the shape, which is also what the classes differ in.
fn tinted(level: f64, rng: &mut Rng) -> [f64; 3] {
    let tint = [rng.uniform(), rng.uniform(), rng.uniform()];
    let sat = rng.range(0.0, 0.3);
    tint.map(|t| (level * (1.0 - sat) + sat * t).clamp(0.0, 1.0))
}

/// Draws one `size`x`size` image of `class` into `out` (HWC, u8). Everything but the shape is
/// a nuisance: brightness and tint, position and scale (which the pretraining augmentations also vary),
/// a small tilt and sensor noise.
fn draw(class: usize, size: usize, rng: &mut Rng, out: &mut [u8]) {
    let s = size as f64;
    // Background and shape levels at least 0.3 apart; either may be the brighter.
    let bg_level = rng.uniform();
    let fg_level = if bg_level > 0.5 {
        rng.range(0.0, bg_level - 0.3)
    } else {
        rng.range(bg_level + 0.3, 1.0)
    };
    let (bg, fg) = (tinted(bg_level, rng), tinted(fg_level, rng));
    let radius = rng.range(0.28, 0.45) * s;
    let cx = rng.range(radius * 0.8, s - radius * 0.8);
    let cy = rng.range(radius * 0.8, s - radius * 0.8);
    let rot = rng.range(-0.35, 0.35);
    let (sin, cos) = rot.sin_cos();
    let noise = rng.range(0.0, 0.05);
    const SS: usize = 3; // supersampling per axis, for anti-aliased edges at small sizes
    for y in 0..size {
        for x in 0..size {
            let mut cover = 0.0;
            for sy in 0..SS {
                for sx in 0..SS {
                    let px = x as f64 + (sx as f64 + 0.5) / SS as f64;
                    let py = y as f64 + (sy as f64 + 0.5) / SS as f64;
                    let (dx, dy) = ((px - cx) / radius, (py - cy) / radius);
                    let (u, v) = (dx * cos + dy * sin, -dx * sin + dy * cos);
                    cover += inside(class, u, v) as u8 as f64;
                }
            }
            let a = cover / (SS * SS) as f64;
            for c in 0..3 {
                let v = bg[c] * (1.0 - a) + fg[c] * a + noise * rng.normal();
                out[(y * size + x) * 3 + c] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
}

/// `n` images of side `size`, labels cycling through the classes (so the classes are balanced
/// to within one image). Image `i` depends only on (`seed`, `stream`, `i`), so the result is
/// the same whatever the thread count.
pub fn generate(n: usize, size: usize, seed: u64, stream: u64) -> Result<ArrayDataset> {
    if !(8..=512).contains(&size) {
        return Err(Error::Config(format!(
            "synthetic image size must be in 8..=512, got {size}"
        )));
    }
    let per = size * size * 3;
    let mut pixels = vec![0u8; n * per];
    let k = SYNTHETIC_CLASSES.len();
    pixels
        .par_chunks_mut(per.max(1))
        .enumerate()
        .for_each(|(i, img)| {
            let key = stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64;
            let mut rng = Rng::derive(seed, key);
            draw(i % k, size, &mut rng, img);
        });
    let labels = (0..n).map(|i| i % k).collect();
    let names = SYNTHETIC_CLASSES.iter().map(|s| s.to_string()).collect();
    ArrayDataset::new(
        Path::new("<synthetic>"),
        (size, size, 3),
        pixels,
        labels,
        names,
    )
}

/// Train and test splits drawn from disjoint random streams of the same seed.
pub fn synthetic_splits(
    train: usize,
    test: usize,
    size: usize,
    seed: u64,
) -> Result<(ArrayDataset, ArrayDataset)> {
    Ok((
        generate(train, size, seed, 1)?,
        generate(test, size, seed, 2)?,
    ))
}
