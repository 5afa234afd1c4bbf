//! The tolerance of the device augmentation against the CPU augmentation on the same draws,
//! shared by its parity test and the GPU input tests.

use crate::DType;

/// The augmentation parity tolerance (src/data/augment/cuda_tests.rs derives it): L = 134 bounds
/// the stages' Lipschitz constants, `m` is the number of terms of the longest sum, bf16 output
/// adds half an ulp. Returns the worst ratio of difference to tolerance, and where.
pub fn augment_worst(got: &[f64], want: &[f32], m: f64, dt: DType) -> (f64, usize) {
    const L: f64 = 134.0;
    let bf = if dt == DType::BF16 {
        2f64.powi(-9)
    } else {
        0.0
    };
    let mut worst = (0.0, 0);
    for (j, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = L * m * 2f64.powi(-24) + bf * w.abs() as f64;
        let r = (g - *w as f64).abs() / tol;
        if r > worst.0 {
            worst = (r, j);
        }
    }
    worst
}

/// Terms of the longest sum of the augmentation of views from sources of side at most
/// `max_side` at output `size`: both resampling axes' taps (2·ceil(scale)+1 each) plus the
/// size² terms of the contrast mean.
pub fn augment_terms(max_side: usize, size: usize) -> f64 {
    let taps = 2 * (2 * (max_side as f64 / size as f64).ceil() as usize + 1);
    (taps + size * size) as f64
}

/// Asserts that the device views `got` of `batch` equal the CPU's `want` within the tolerance
/// above (sources up to the batch's largest side, output `size`); prints the worst ratio.
pub fn assert_views_match(
    got: &crate::Tensor,
    want: &[f32],
    batch: &crate::data::RawBatch,
    size: usize,
) {
    let max_side = batch
        .views
        .iter()
        .map(|v| v.size.0.max(v.size.1))
        .max()
        .unwrap_or(1);
    let dt = got.dtype();
    let got = got
        .to_device(crate::Device::Cpu)
        .unwrap()
        .to_vec_f64()
        .unwrap();
    let (ratio, j) = augment_worst(&got, want, augment_terms(max_side, size), dt);
    println!(
        "{}: worst difference {ratio:.3} of the tolerance",
        dt.name()
    );
    assert!(
        ratio <= 1.0,
        "{} value {j}: got {} want {} ({ratio}x tolerance)",
        dt.name(),
        got[j],
        want[j]
    );
}
