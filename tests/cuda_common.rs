//! Helpers of the CUDA parity tests (included by tests/cuda_parity*.rs with `#[path]`).
#![cfg(feature = "cuda")]
#![allow(dead_code)]

use simclr::testing::{assert_close, tolerance};
use simclr::{DType, Device, Rng, Tensor};

pub const DTYPES: [DType; 2] = [DType::F32, DType::BF16];

/// The GPU, or None after printing why the test is skipped.
pub fn gpu() -> Option<Device> {
    if simclr::cuda_available() {
        Some(Device::Cuda(0))
    } else {
        println!("skipped: {}", simclr::cuda_unavailable_reason());
        None
    }
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
