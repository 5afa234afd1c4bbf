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

/// Reads both inputs (rounded to TF32 when `tf32`) and the old output (when β ≠ 0), computes,
/// and writes the output.
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
    tf32: bool,
) -> Result<()> {
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
    elems::write_bytes(out.0 as u64, &bytes, &format!("{who} {}", out.1)).map_err(exec_failed)
}
