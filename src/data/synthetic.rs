//! The built-in dataset: procedurally drawn RGB images of ten shape classes. The class is the
//! shape alone; colour, position, scale, rotation, texture and background clutter are random
//! per image, so raw pixels say little about the class and a network has to learn the shape.

use super::dataset::ArrayDataset;
use crate::{Error, Result, Rng};
use rayon::prelude::*;
use std::f64::consts::PI;
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

fn random_colour(rng: &mut Rng) -> [f64; 3] {
    [rng.uniform(), rng.uniform(), rng.uniform()]
}

fn luma(c: &[f64; 3]) -> f64 {
    0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
}

/// Draws one `size`x`size` image of `class` into `out` (HWC, u8). Everything but the shape is
/// a nuisance the pretraining augmentations also vary (colours, position, scale) or that no
/// augmentation removes (rotation, a distractor stroke, sensor noise), so that the shape is
/// what two views of one image share and what tells the classes apart.
fn draw(class: usize, size: usize, rng: &mut Rng, out: &mut [u8]) {
    let s = size as f64;
    // Background: a gentle gradient between two random colours in a random direction.
    let bg0 = random_colour(rng);
    let bg1 = bg0.map(|c| (c + rng.range(-0.2, 0.2)).clamp(0.0, 1.0));
    let gdir = rng.range(0.0, 2.0 * PI);
    // Foreground colour far enough in luminance from the background's mean to stay visible.
    let bg_mean = [0, 1, 2].map(|c| 0.5 * (bg0[c] + bg1[c]));
    let mut fg = random_colour(rng);
    for _ in 0..20 {
        if (luma(&fg) - luma(&bg_mean)).abs() > 0.3 {
            break;
        }
        fg = random_colour(rng);
    }
    // Pose: scale (radius in pixels), centre, rotation.
    let radius = rng.range(0.26, 0.42) * s;
    let cx = rng.range(radius * 0.8, s - radius * 0.8);
    let cy = rng.range(radius * 0.8, s - radius * 0.8);
    let rot = rng.range(0.0, 2.0 * PI);
    let (sin, cos) = rot.sin_cos();
    // One thin distractor stroke of its own colour, anywhere (often behind the shape).
    let stroke = (rng.uniform() < 0.5).then(|| {
        let c = random_colour(rng);
        let (x0, y0) = (rng.range(0.0, s), rng.range(0.0, s));
        let ang = rng.range(0.0, PI);
        let len = rng.range(0.2, 0.5) * s;
        (c, x0, y0, ang, len, 0.06 * s)
    });
    let noise = rng.range(0.0, 0.04);
    const SS: usize = 3; // supersampling per axis, for anti-aliased edges at small sizes
    for y in 0..size {
        for x in 0..size {
            let mut acc = [0.0f64; 3];
            for sy in 0..SS {
                for sx in 0..SS {
                    let px = x as f64 + (sx as f64 + 0.5) / SS as f64;
                    let py = y as f64 + (sy as f64 + 0.5) / SS as f64;
                    let g = ((px / s - 0.5) * gdir.cos() + (py / s - 0.5) * gdir.sin() + 0.5)
                        .clamp(0.0, 1.0);
                    let mut col = [0, 1, 2].map(|c| bg0[c] * (1.0 - g) + bg1[c] * g);
                    if let Some((cc, x0, y0, ang, len, width)) = &stroke {
                        let (dx, dy) = (px - x0, py - y0);
                        let along = dx * ang.cos() + dy * ang.sin();
                        let across = -dx * ang.sin() + dy * ang.cos();
                        if along.abs() < len / 2.0 && across.abs() < width / 2.0 + 0.5 {
                            col = *cc;
                        }
                    }
                    let (dx, dy) = ((px - cx) / radius, (py - cy) / radius);
                    let (u, v) = (dx * cos + dy * sin, -dx * sin + dy * cos);
                    if inside(class, u, v) {
                        col = fg;
                    }
                    for c in 0..3 {
                        acc[c] += col[c];
                    }
                }
            }
            for c in 0..3 {
                let v = acc[c] / (SS * SS) as f64 + noise * rng.normal();
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
