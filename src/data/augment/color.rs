//! Colour distortion on f32 HWC images in [0, 1]: brightness, contrast, saturation and hue in
//! random order, each followed by clipping, plus random grayscale. Single-channel images get
//! brightness and contrast only (saturation and hue mean nothing without colour).

use crate::Rng;

const LUMA: [f32; 3] = [0.299, 0.587, 0.114];

fn clip(px: &mut [f32]) {
    px.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
}

fn gray_of(p: &[f32]) -> f32 {
    LUMA[0] * p[0] + LUMA[1] * p[1] + LUMA[2] * p[2]
}

pub fn brightness(px: &mut [f32], factor: f32) {
    px.iter_mut().for_each(|v| *v *= factor);
    clip(px);
}

/// Blends every value with the image's mean gray level.
pub fn contrast(px: &mut [f32], c: usize, factor: f32) {
    let mean = if c == 3 {
        px.chunks_exact(3).map(gray_of).sum::<f32>() / (px.len() / 3).max(1) as f32
    } else {
        px.iter().sum::<f32>() / px.len().max(1) as f32
    };
    px.iter_mut().for_each(|v| *v = mean + factor * (*v - mean));
    clip(px);
}

/// Blends every pixel with its own gray level (RGB only).
pub fn saturation(px: &mut [f32], factor: f32) {
    for p in px.chunks_exact_mut(3) {
        let g = gray_of(p);
        p.iter_mut().for_each(|v| *v = g + factor * (*v - g));
    }
    clip(px);
}

/// Rotates the hue by `shift` turns (RGB only), through HSV.
pub fn hue(px: &mut [f32], shift: f32) {
    for p in px.chunks_exact_mut(3) {
        let (r, g, b) = (p[0], p[1], p[2]);
        let max = r.max(g).max(b);
        let min = r.min(g).min(b);
        let d = max - min;
        if d <= 0.0 {
            continue; // gray: no hue to rotate
        }
        let h = if max == r {
            ((g - b) / d).rem_euclid(6.0)
        } else if max == g {
            (b - r) / d + 2.0
        } else {
            (r - g) / d + 4.0
        };
        let h = (h / 6.0 + shift).rem_euclid(1.0) * 6.0;
        let (s, v) = (d / max, max);
        let sector = (h.floor() as usize).min(5);
        let f = h - sector as f32;
        let (pp, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
        let (nr, ng, nb) = match sector {
            0 => (v, t, pp),
            1 => (q, v, pp),
            2 => (pp, v, t),
            3 => (pp, q, v),
            4 => (t, pp, v),
            _ => (v, pp, q),
        };
        p[0] = nr;
        p[1] = ng;
        p[2] = nb;
    }
    clip(px);
}

/// Replaces every channel by the luma (no-op for one channel).
pub fn grayscale(px: &mut [f32], c: usize) {
    if c != 3 {
        return;
    }
    for p in px.chunks_exact_mut(3) {
        let g = gray_of(p).clamp(0.0, 1.0);
        p.fill(g);
    }
}

/// One draw of the colour jitter: the order of the four ops (0 brightness, 1 contrast,
/// 2 saturation, 3 hue) and each op's parameter, indexed by op.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Jitter {
    pub order: [usize; 4],
    pub params: [f32; 4],
}

/// SimCLR's colour jitter at strength `s`: brightness, contrast and saturation factors uniform
/// in [1 − 0.8s, 1 + 0.8s], hue shift uniform in ±0.2s, applied in a random order. Parameters
/// are drawn in the order the ops run.
pub fn draw_jitter(s: f64, rng: &mut Rng) -> Jitter {
    let mut order = [0usize, 1, 2, 3];
    rng.shuffle(&mut order);
    let mut params = [0f32; 4];
    for op in order {
        params[op] = if op < 3 {
            rng.range((1.0 - 0.8 * s).max(0.0), 1.0 + 0.8 * s) as f32
        } else {
            rng.range(-0.2 * s, 0.2 * s) as f32
        };
    }
    Jitter { order, params }
}

/// Applies a drawn jitter; saturation and hue are skipped on one channel.
pub fn apply_jitter(px: &mut [f32], c: usize, j: &Jitter) {
    for op in j.order {
        let p = j.params[op];
        match op {
            0 => brightness(px, p),
            1 => contrast(px, c, p),
            2 if c == 3 => saturation(px, p),
            3 if c == 3 => hue(px, p),
            _ => {}
        }
    }
}

/// Draws and applies the colour jitter at strength `s`.
pub fn color_jitter(px: &mut [f32], c: usize, s: f64, rng: &mut Rng) {
    let j = draw_jitter(s, rng);
    apply_jitter(px, c, &j);
}
