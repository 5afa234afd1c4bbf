//! The numerics of the emulated convolutions: the emulator's own direct convolution (`direct`,
//! NHWC with KRSC filters, summed in f64), then `out = α·result + β·out` as cuDNN documents it.
//!
//! Compute type: the sums are f64 (at least as accurate as cuDNN's f32 accumulation); the blend
//! is f32 for FLOAT, HALF and BFLOAT16 data (16-bit inputs widened exactly, the result rounded
//! once to the data type, nearest-even), f64 for DOUBLE. α and β are host
//! scalars of the compute type (float, or double for DOUBLE data). β = 0 means the output is
//! not read (it may hold garbage or NaN); β ≠ 0 reads it (`check_read`).

use super::direct;
use super::objects::bad;
use super::problem::Problem;
use crate::cuda::driver::cudnn::{cudnnStatus_t, DnnError, Result};
use crate::cuda::emu::elems::{self, Elem};
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Forward,
    BackwardData,
    BackwardFilter,
}

pub fn exec_failed(detail: impl Into<String>) -> DnnError {
    DnnError::new(cudnnStatus_t::CUDNN_STATUS_EXECUTION_FAILED, detail)
}

/// α and β read as the compute type (both widened to f64, exactly).
pub struct Scalars {
    pub alpha: f64,
    pub beta: f64,
}

/// # Safety
/// `alpha`/`beta` are null or point at host scalars of the compute type.
pub unsafe fn scalars(p: &Problem, alpha: *const c_void, beta: *const c_void) -> Result<Scalars> {
    let read = |s: *const c_void| {
        if p.elem == Elem::F64 {
            elems::host_scalar_f64(s)
        } else {
            elems::host_scalar_f32(s).map(f64::from)
        }
    };
    match (read(alpha), read(beta)) {
        (Some(alpha), Some(beta)) => Ok(Scalars { alpha, beta }),
        _ => Err(bad(
            "alpha and beta must point at host scalars (one is null)",
        )),
    }
}

/// The shapes of (first input, second input, output) of a direction.
fn shapes(dir: Dir, p: &Problem) -> [[usize; 4]; 3] {
    let g = &p.g;
    let x = [g.n, g.h, g.w, g.cin];
    let w = [g.cout, g.kh, g.kw, g.cin_g];
    let y = [g.n, g.ho, g.wo, g.cout];
    match dir {
        Dir::Forward => [x, w, y],
        Dir::BackwardData => [y, w, x],
        Dir::BackwardFilter => [x, y, w],
    }
}

/// The direction's result in f64 from its two inputs.
fn compute(dir: Dir, p: &Problem, a: &[f64], b: &[f64]) -> Vec<f64> {
    match dir {
        Dir::Forward => direct::forward(a, b, &p.g),
        Dir::BackwardData => direct::backward_data(a, b, &p.g),
        Dir::BackwardFilter => direct::backward_filter(a, b, &p.g),
    }
}

/// Bytes of the output of a direction.
pub fn out_bytes(dir: Dir, p: &Problem) -> usize {
    shapes(dir, p)[2].iter().product::<usize>() * p.elem.size()
}
/// Bytes of the two inputs of a direction.
pub fn in_bytes(dir: Dir, p: &Problem) -> [usize; 2] {
    let s = shapes(dir, p);
    [
        s[0].iter().product::<usize>() * p.elem.size(),
        s[1].iter().product::<usize>() * p.elem.size(),
    ]
}

/// # Safety
/// `ptr` is a device address of the emulator runtime (the range is checked).
unsafe fn read(who: &str, (ptr, name): (*const c_void, &str), bytes: usize) -> Result<Vec<u8>> {
    elems::read_bytes(ptr as u64, bytes, &format!("{who} {name}")).map_err(exec_failed)
}

/// Both inputs of a direction, read (each range checked, and its stream order).
///
/// # Safety
/// The pointers are device addresses of the emulator runtime.
pub unsafe fn read_inputs(
    dir: Dir,
    p: &Problem,
    who: &str,
    inputs: [(*const c_void, &str); 2],
) -> Result<[Vec<u8>; 2]> {
    let [ba, bb] = in_bytes(dir, p);
    Ok([read(who, inputs[0], ba)?, read(who, inputs[1], bb)?])
}

/// How the chosen algorithm computes: whether it multiplies FLOAT data in TF32, and whether
/// it gives the same bits on every call.
#[derive(Clone, Copy)]
pub struct Numerics {
    pub tf32: bool,
    pub deterministic: bool,
}

/// The calls of nondeterministic algorithms so far: each draws its own last bits.
static NONDETERMINISTIC_CALLS: AtomicU64 = AtomicU64::new(0);

/// Moves about one output in four by one unit in its last place, up or down, in a pattern
/// drawn anew for every call: a nondeterministic algorithm's result (atomics adding partial
/// sums in whatever order they arrive on a GPU) is not the same bits twice. Zeros and values
/// that are not finite stay as they are.
fn vary_last_bits(bytes: &mut [u8], e: Elem) {
    let call = NONDETERMINISTIC_CALLS.fetch_add(1, Ordering::Relaxed);
    let step = |i: usize| {
        let mut h = (call ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(i as u64 * 2 + 1);
        h ^= h >> 29;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 32;
        match h % 8 {
            0 => -1i64,
            1 => 1,
            _ => 0,
        }
    };
    let size = e.size();
    for (i, c) in bytes.chunks_exact_mut(size).enumerate() {
        let k = step(i);
        if k == 0 {
            continue;
        }
        match e {
            Elem::F32 => {
                let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                if v.is_finite() && v != 0.0 {
                    let w = f32::from_bits((v.to_bits() as i64 + k) as u32);
                    if w.is_finite() {
                        c.copy_from_slice(&w.to_le_bytes());
                    }
                }
            }
            Elem::F64 => {
                let v = f64::from_le_bytes(c.try_into().expect("8 bytes"));
                if v.is_finite() && v != 0.0 {
                    let w = f64::from_bits((v.to_bits() as i64 + k) as u64);
                    if w.is_finite() {
                        c.copy_from_slice(&w.to_le_bytes());
                    }
                }
            }
            Elem::Bf16 | Elem::F16 => {
                let b = u16::from_le_bytes([c[0], c[1]]);
                // Exponent all ones (not finite) or a zero: left alone.
                let exp_mask: u16 = if e == Elem::Bf16 { 0x7f80 } else { 0x7c00 };
                if b & exp_mask != exp_mask && b & 0x7fff != 0 {
                    let w = (b as i32 + k as i32) as u16;
                    if w & exp_mask != exp_mask {
                        c.copy_from_slice(&w.to_le_bytes());
                    }
                }
            }
            Elem::U64 => {}
        }
    }
}

/// Reads both inputs (rounded to TF32 when `tf32`) and the old output (when β ≠ 0), computes,
/// and writes the output; a nondeterministic algorithm's last bits vary from call to call
/// ([`vary_last_bits`]).
///
/// # Safety
/// The pointers are device addresses of the emulator runtime (each range is checked first).
pub unsafe fn run(
    dir: Dir,
    p: &Problem,
    who: &str,
    inputs: [(*const c_void, &str); 2],
    out: (*mut c_void, &str),
    s: &Scalars,
    how: Numerics,
) -> Result<()> {
    let Numerics {
        tf32,
        deterministic,
    } = how;
    let nout = out_bytes(dir, p);
    let [a, b] = read_inputs(dir, p, who, inputs)?;
    let old = if s.beta != 0.0 {
        Some(read(who, (out.0 as *const c_void, out.1), nout)?)
    } else {
        None
    };
    let input = |bytes: &[u8]| {
        let v = elems::decode(bytes, p.elem);
        if tf32 {
            v.into_iter().map(elems::round_tf32).collect()
        } else {
            v
        }
    };
    let r = compute(dir, p, &input(&a), &input(&b));
    let prev = old.map(|o| elems::decode(&o, p.elem));
    // The blend in the compute type: f64 for DOUBLE data, f32 otherwise.
    let vals = r.iter().enumerate().map(|(i, &v)| {
        let (old, f64_math) = (prev.as_ref().map(|pr| pr[i]), p.elem == Elem::F64);
        match (old, f64_math) {
            (Some(o), true) => s.alpha * v + s.beta * o,
            (None, true) => s.alpha * v,
            (Some(o), false) => {
                f64::from((s.alpha as f32) * (v as f32) + (s.beta as f32) * (o as f32))
            }
            (None, false) => f64::from((s.alpha as f32) * (v as f32)),
        }
    });
    let mut bytes = Vec::with_capacity(nout);
    elems::encode(vals, p.elem, &mut bytes);
    if !deterministic {
        vary_last_bits(&mut bytes, p.elem);
    }
    elems::write_bytes(out.0 as u64, &bytes, &format!("{who} {}", out.1)).map_err(exec_failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nondeterministic_results_move_by_one_unit_and_differ_from_call_to_call() {
        let vals: Vec<f64> = (0..4000).map(|i| (i as f64 - 2000.0) * 0.37).collect();
        for e in [Elem::F32, Elem::Bf16, Elem::F64, Elem::F16] {
            let mut base = Vec::new();
            elems::encode(vals.iter().copied(), e, &mut base);
            let (mut a, mut b) = (base.clone(), base.clone());
            vary_last_bits(&mut a, e);
            vary_last_bits(&mut b, e);
            assert_ne!(a, b, "{e:?}: two calls gave the same bits");
            let (va, vb) = (elems::decode(&base, e), elems::decode(&a, e));
            let moved = va.iter().zip(&vb).filter(|(x, y)| x != y).count();
            // About one in four moves; zeros never do.
            assert!((600..1400).contains(&moved), "{e:?}: {moved} of 4000 moved");
            assert_eq!(vb[2000], 0.0, "{e:?}: zero moved");
            for (x, y) in va.iter().zip(&vb) {
                // One unit in the last place: the same sign, within a relative 2^-p.
                let p = match e {
                    Elem::F64 => 52,
                    Elem::F32 => 23,
                    Elem::F16 => 10,
                    _ => 7,
                };
                assert!(
                    (x - y).abs() <= x.abs() * 2f64.powi(-p) * 1.01,
                    "{e:?}: {x} -> {y}"
                );
            }
        }
    }
}
