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
