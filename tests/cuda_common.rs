//! Helpers of the CUDA parity tests (included by tests/cuda_parity*.rs with `#[path]`).
#![cfg(feature = "cuda")]
#![allow(dead_code)]

use simclr::testing::{assert_close, tolerance};
use simclr::{DType, Device, Rng, Tensor};

pub const DTYPES: [DType; 2] = [DType::F32, DType::BF16];

/// The GPU, or None after printing why the test is skipped. With `SIMCLR_REQUIRE_GPU=1` (every
/// validation script sets it) a missing GPU fails the test instead: a skip must never pass there.
pub fn gpu() -> Option<Device> {
    if simclr::cuda_available() {
        return Some(Device::Cuda(0));
    }
    let why = simclr::cuda_unavailable_reason();
    if std::env::var("SIMCLR_REQUIRE_GPU").as_deref() == Ok("1") {
        panic!("SIMCLR_REQUIRE_GPU=1 but the GPU cannot be opened: {why}");
    }
    println!("skipped: {why}");
    None
}

/// Random CPU tensor of `dtype` (normal, scaled, shifted).
pub fn rand(shape: &[usize], dtype: DType, rng: &mut Rng, std: f64, shift: f64) -> Tensor {
    let v: Vec<f64> = (0..shape.iter().product())
        .map(|_| rng.normal() * std + shift)
        .collect();
    Tensor::from_f64(&v, shape, dtype).unwrap()
}
pub fn randn(shape: &[usize], dtype: DType, rng: &mut Rng) -> Tensor {
    rand(shape, dtype, rng, 1.0, 0.0)
}

/// A test input on both sides: (CPU f32 copy for the reference, GPU copy in `dtype`).
pub fn both(t: &Tensor, dev: Device) -> (Tensor, Tensor) {
    (t.to_dtype(DType::F32).unwrap(), t.to_device(dev).unwrap())
}

pub fn check(what: &str, dt: DType, got: &Tensor, want: &Tensor, k: usize, depth: usize) {
    assert_eq!(got.device(), Device::Cuda(0), "{what}: result left the GPU");
    assert_close(
        &format!("{what} ({})", dt.name()),
        got,
        want,
        tolerance(dt, k, depth),
    );
}

/// The augmentation parity tolerance (tests/cuda_parity_augment.rs derives it): L = 134 bounds
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
