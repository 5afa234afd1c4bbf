//! Separable Gaussian blur with edge replication, so a constant image stays constant.

/// Kernel side used by SimCLR: about `frac` of the image side, made odd (23 at 224 for 0.1).
pub fn kernel_size(side: usize, frac: f64) -> usize {
    let radius = ((side as f64 * frac) as usize) / 2;
    2 * radius + 1
}

fn weights(size: usize, sigma: f64) -> Vec<f32> {
    let r = (size / 2) as f64;
    let w: Vec<f64> = (0..size)
        .map(|i| (-(i as f64 - r).powi(2) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = w.iter().sum();
    w.into_iter().map(|v| (v / sum) as f32).collect()
}

/// Blurs an HWC image in place with an odd `size` kernel of standard deviation `sigma`.
pub fn gaussian_blur(px: &mut [f32], h: usize, w: usize, c: usize, size: usize, sigma: f64) {
    if size <= 1 {
        return;
    }
    let k = weights(size, sigma);
    let r = (size / 2) as i64;
    let mut tmp = vec![0f32; px.len()];
    // Horizontal pass into tmp.
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                let mut acc = 0f32;
                for (j, &kj) in k.iter().enumerate() {
                    let xx = (x as i64 + j as i64 - r).clamp(0, w as i64 - 1) as usize;
                    acc += kj * px[(y * w + xx) * c + ch];
                }
                tmp[(y * w + x) * c + ch] = acc;
            }
        }
    }
    // Vertical pass back into px, row-wise for locality.
    let row = w * c;
    for y in 0..h {
        let dst = &mut px[y * row..(y + 1) * row];
        dst.fill(0.0);
        for (j, &kj) in k.iter().enumerate() {
            let yy = (y as i64 + j as i64 - r).clamp(0, h as i64 - 1) as usize;
            for (d, s) in dst.iter_mut().zip(&tmp[yy * row..(yy + 1) * row]) {
                *d += kj * s;
            }
        }
    }
}
