//! One GPU parity test body, run on every device kind this build has (as candle's
//! `test_device!` does): `device_test!(body)` after `fn body(dev: Device)` makes the tests
//! `body::cuda` (the GPU; without one it prints `skipped: <reason>`, and fails instead with
//! `SIMCLR_REQUIRE_GPU=1`) and, in a `cuda-emu` build, `body::emu` (the emulated device, which
//! never skips). The two cannot share a process, since the CUDA mode is chosen once per process,
//! so a build has one of them. The helpers below build the inputs on both sides and compare
//! against the CPU reference with tolerances derived from the dtype.

use crate::testing::{assert_close, tolerance};
use crate::{DType, Device, Rng, Tensor};

/// Defines the per-device tests of a parity body `fn $body(dev: Device)` in scope.
#[cfg(test)]
macro_rules! device_test {
    ($body:ident) => {
        mod $body {
            #[cfg(not(feature = "cuda-emu"))]
            #[test]
            fn cuda() {
                if let Some(dev) = $crate::testing::device::gpu() {
                    super::$body(dev)
                }
            }

            #[cfg(feature = "cuda-emu")]
            #[test]
            fn emu() {
                super::$body($crate::testing::device::emulated())
            }
        }
    };
}
#[cfg(test)]
pub(crate) use device_test;

pub const DTYPES: [DType; 2] = [DType::F32, DType::BF16];

/// The GPU, or None after printing why the test is skipped. With `SIMCLR_REQUIRE_GPU=1` (every
/// validation script sets it) a missing GPU fails the test instead: a skip must never pass there.
pub fn gpu() -> Option<Device> {
    if crate::cuda_available() {
        return Some(Device::Cuda(0));
    }
    let why = crate::cuda_unavailable_reason();
    if std::env::var("SIMCLR_REQUIRE_GPU").as_deref() == Ok("1") {
        panic!("SIMCLR_REQUIRE_GPU=1 but the GPU cannot be opened: {why}");
    }
    println!("skipped: {why}");
    None
}

/// The emulated device; this process must not have chosen the real GPU already (run the suite
/// with `SIMCLR_CUDA=emu`, so that every test of the process agrees).
#[cfg(feature = "cuda-emu")]
pub fn emulated() -> Device {
    use crate::cuda::driver::{select, Mode};
    if let Err(e) = select(Mode::Emulated) {
        panic!("the emulated device cannot be used (run with SIMCLR_CUDA=emu): {e}");
    }
    assert!(
        crate::cuda_available(),
        "the emulated device did not open: {}",
        crate::cuda_unavailable_reason()
    );
    Device::Cuda(0)
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

/// A test input on both sides: (CPU f32 copy for the reference, device copy in `dtype`).
pub fn both(t: &Tensor, dev: Device) -> (Tensor, Tensor) {
    (t.to_dtype(DType::F32).unwrap(), t.to_device(dev).unwrap())
}

/// `got` (on the device) against the CPU reference `want`, within the tolerance of `dt` for a
/// reduction of `k` terms chained `depth` times.
pub fn check(what: &str, dt: DType, got: &Tensor, want: &Tensor, k: usize, depth: usize) {
    assert_eq!(got.device(), Device::Cuda(0), "{what}: result left the GPU");
    assert_close(
        &format!("{what} ({})", dt.name()),
        got,
        want,
        tolerance(dt, k, depth),
    );
}

/// `got`, the device's sum of the terms of `x` (the kernel accumulates in f32 and rounds the
/// result once to `dt`), against the CPU's f32 `want`. Rounding bounds a sum's error relative to
/// Σ|xᵢ|, not to the result (terms that cancel leave a small result with the error of the large
/// ones), so the accumulation is allowed `tolerance(F32, n, 1)·Σ|xᵢ|`, and the final rounding
/// `2·u(dt)·|want|`.
pub fn check_sum(what: &str, dt: DType, got: &Tensor, want: &Tensor, x: &Tensor) {
    assert_eq!(got.device(), Device::Cuda(0), "{what}: result left the GPU");
    let magnitude: f64 = x.to_vec_f64().unwrap().iter().map(|v| v.abs()).sum();
    let (g, w) = (got.to_vec_f64().unwrap()[0], want.to_vec_f64().unwrap()[0]);
    let allowed =
        tolerance(DType::F32, x.numel(), 1) * magnitude + 2.0 * dt.unit_roundoff() * w.abs();
    assert!(
        (g - w).abs() <= allowed,
        "{what} ({}): got {g} want {w}: |difference| {:.3e} > {allowed:.3e} allowed (terms' \
         magnitudes sum to {magnitude})",
        dt.name(),
        (g - w).abs()
    );
}
