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

/// Blurs an HWC image with values in [0, 1] in place with an odd `size` kernel of standard
/// deviation `sigma`.
pub fn gaussian_blur(px: &mut [f32], h: usize, w: usize, c: usize, size: usize, sigma: f64) {
    if size <= 1 {
        return;
    }
    let k = weights(size, sigma);
    let r = size / 2;
    let row = w * c;
    // Horizontal pass: pad each row by replicating its edge pixels, then accumulate one
    // shifted copy per tap (contiguous slices, so the inner loop vectorises).
    let mut tmp = vec![0f32; px.len()];
    let mut pad = vec![0f32; (w + 2 * r) * c];
    for y in 0..h {
        let src = &px[y * row..(y + 1) * row];
        for i in 0..r {
            pad[i * c..(i + 1) * c].copy_from_slice(&src[..c]);
            pad[(r + w + i) * c..(r + w + i + 1) * c].copy_from_slice(&src[row - c..]);
        }
        pad[r * c..(r + w) * c].copy_from_slice(src);
        let dst = &mut tmp[y * row..(y + 1) * row];
        for (j, &kj) in k.iter().enumerate() {
            for (d, s) in dst.iter_mut().zip(&pad[j * c..j * c + row]) {
                *d += kj * s;
            }
        }
    }
    // Vertical pass back into px, clamping the source row at the edges.
    for y in 0..h {
        let dst = &mut px[y * row..(y + 1) * row];
        dst.fill(0.0);
        for (j, &kj) in k.iter().enumerate() {
            let yy = (y + j).saturating_sub(r).min(h - 1);
            for (d, s) in dst.iter_mut().zip(&tmp[yy * row..(yy + 1) * row]) {
                *d += kj * s;
            }
        }
        // The f32 weights sum to 1 only up to rounding: a white pixel can come out as
        // 1.0000002. A weighted mean stays within the input's [0, 1] range, so clamp to it.
        dst.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    }
}
