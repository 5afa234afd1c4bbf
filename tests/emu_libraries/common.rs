//! Buffers standing for device memory, encoded independently of the emulation (the `half`
//! crate directly), and the random inputs.

use half::bf16;
use simclr::{DType, Rng};

/// Encodes values as `dt` (bf16 rounded to nearest even).
pub fn encode(v: &[f64], dt: DType) -> Vec<u8> {
    let mut out = Vec::new();
    for &x in v {
        match dt {
            DType::F32 => out.extend_from_slice(&(x as f32).to_le_bytes()),
            DType::BF16 => out.extend_from_slice(&bf16::from_f64(x).to_le_bytes()),
            DType::F64 => out.extend_from_slice(&x.to_le_bytes()),
            DType::F16 => out.extend_from_slice(&half::f16::from_f64(x).to_le_bytes()),
        }
    }
    out
}

pub fn decode(b: &[u8], dt: DType) -> Vec<f64> {
    match dt {
        DType::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        DType::BF16 => b
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        DType::F64 => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        DType::F16 => b
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
    }
}

/// Random values already representable in `dt` (so the f64 reference sees the same inputs).
pub fn random(n: usize, dt: DType, rng: &mut Rng) -> (Vec<f64>, Vec<u8>) {
    let v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let bytes = encode(&v, dt);
    (decode(&bytes, dt), bytes)
}

/// A buffer of `n` elements of `dt`, every one NaN (a β = 0 output must not be read).
pub fn nans(n: usize, dt: DType) -> Vec<u8> {
    encode(&vec![f64::NAN; n], dt)
}

pub fn ptr(b: &[u8]) -> *const std::ffi::c_void {
    b.as_ptr() as *const std::ffi::c_void
}
pub fn mptr(b: &mut [u8]) -> *mut std::ffi::c_void {
    b.as_mut_ptr() as *mut std::ffi::c_void
}
