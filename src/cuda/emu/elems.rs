//! Element data of emulated device memory, shared by the emulated libraries: reading a checked
//! byte range of a device pointer into f32 (or f64) values, and writing values back rounded to
//! the element type.
//!
//! Conventions: a device pointer is a host address owned by the emulator runtime; every range is
//! first validated with `memory::check_read` / `check_write` over its exact byte extent, then
//! copied byte-wise (so no alignment is assumed). 16-bit floats are widened exactly; results are
//! rounded to bf16/f16 with round-to-nearest-even from the value itself (`tensor::bf16_from_f64`:
//! the `half` crate's own f64 conversions misround values just above a tie), as the GPU
//! libraries do.

use super::memory;
use crate::tensor::{bf16_from_f64, f16_from_f64};
use half::{bf16, f16};

/// The element types the emulated libraries compute with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    F32,
    F64,
    Bf16,
    F16,
    /// Raw 8-byte words (NCCL's u64 headers): copied, never summed as floats.
    U64,
}

impl Elem {
    pub fn size(self) -> usize {
        match self {
            Elem::F32 => 4,
            Elem::F64 | Elem::U64 => 8,
            Elem::Bf16 | Elem::F16 => 2,
        }
    }
}

/// Copies `bytes` bytes from device address `ptr` after `check_read`.
///
/// # Safety
/// `ptr` is an address the emulator runtime owns (validated by `check_read`).
pub unsafe fn read_bytes(ptr: u64, bytes: usize, who: &str) -> Result<Vec<u8>, String> {
    memory::check_read(ptr, bytes, who)?;
    let mut out = vec![0u8; bytes];
    if bytes > 0 {
        std::ptr::copy_nonoverlapping(ptr as *const u8, out.as_mut_ptr(), bytes);
    }
    Ok(out)
}

/// Copies `data` to device address `ptr` after `check_write`.
///
/// # Safety
/// `ptr` is an address the emulator runtime owns (validated by `check_write`).
pub unsafe fn write_bytes(ptr: u64, data: &[u8], who: &str) -> Result<(), String> {
    memory::check_write(ptr, data.len(), who)?;
    if !data.is_empty() {
        std::ptr::copy_nonoverlapping(data.as_ptr(), ptr as *mut u8, data.len());
    }
    Ok(())
}

/// Decodes little-endian elements of type `e` into f64 (exact for every float type here).
pub fn decode(bytes: &[u8], e: Elem) -> Vec<f64> {
    match e {
        Elem::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        Elem::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect(),
        Elem::Bf16 => bytes
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        Elem::F16 => bytes
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        Elem::U64 => bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f64)
            .collect(),
    }
}

/// Decodes into f32 (the compute type of every 16- and 32-bit configuration).
pub fn decode_f32(bytes: &[u8], e: Elem) -> Vec<f32> {
    match e {
        Elem::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Elem::Bf16 => bytes
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Elem::F16 => bytes
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => decode(bytes, e).into_iter().map(|v| v as f32).collect(),
    }
}

/// Encodes values as elements of type `e`, rounding to nearest even.
pub fn encode(values: impl Iterator<Item = f64>, e: Elem, out: &mut Vec<u8>) {
    for v in values {
        match e {
            Elem::F32 => out.extend_from_slice(&(v as f32).to_le_bytes()),
            Elem::F64 => out.extend_from_slice(&v.to_le_bytes()),
            Elem::Bf16 => out.extend_from_slice(&bf16_from_f64(v).to_le_bytes()),
            Elem::F16 => out.extend_from_slice(&f16_from_f64(v).to_le_bytes()),
            Elem::U64 => out.extend_from_slice(&(v as u64).to_le_bytes()),
        }
    }
}

/// Encodes f32 results (bf16/f16 rounded from f32 directly: one rounding, as the GPU does).
pub fn encode_f32(values: &[f32], e: Elem) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * e.size());
    match e {
        Elem::F32 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        Elem::Bf16 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&bf16::from_f32(*v).to_le_bytes())),
        Elem::F16 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&f16::from_f32(*v).to_le_bytes())),
        _ => encode(values.iter().map(|&v| v as f64), e, &mut out),
    }
    out
}

/// Reads a host scalar (α or β) of the compute type.
///
/// # Safety
/// `p` is null or points at a readable value of the given type.
pub unsafe fn host_scalar_f32(p: *const std::ffi::c_void) -> Option<f32> {
    (!p.is_null()).then(|| std::ptr::read_unaligned(p as *const f32))
}

/// # Safety
/// `p` is null or points at a readable f64.
pub unsafe fn host_scalar_f64(p: *const std::ffi::c_void) -> Option<f64> {
    (!p.is_null()).then(|| std::ptr::read_unaligned(p as *const f64))
}

/// Rounds an f64 to the nearest value of type `e` (nearest-even).
/// An f32 value rounded to TF32 (10 explicit mantissa bits, nearest-even), as tensor cores
/// read FLOAT inputs when TF32 is permitted.
pub fn round_tf32(v: f64) -> f64 {
    let f = v as f32;
    if !f.is_finite() {
        return v;
    }
    let bits = f.to_bits();
    f64::from(f32::from_bits(
        bits.wrapping_add(0xfff + ((bits >> 13) & 1)) & !0x1fff,
    ))
}

pub fn round(v: f64, e: Elem) -> f64 {
    match e {
        Elem::F32 => v as f32 as f64,
        Elem::Bf16 => bf16_from_f64(v).to_f64(),
        Elem::F16 => f16_from_f64(v).to_f64(),
        Elem::F64 => v,
        Elem::U64 => v.round(),
    }
}
