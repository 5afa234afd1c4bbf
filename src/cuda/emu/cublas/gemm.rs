//! The checks and numerics of the emulated `cublasGemmEx` (rules listed in `mod.rs`), in
//! column-major terms: element (i, j) of a stored matrix with leading dimension ld is at i + j·ld.

use super::{invalid, GEMM_SCRATCH};
use crate::cuda::driver::cublas::{
    cublasComputeType_t, cublasOperation_t, cublasStatus_t, cudaDataType, BlasError, Result,
};
use crate::cuda::emu::elems::{self, Elem};
use rayon::prelude::*;
use std::ffi::c_void;

pub struct Call {
    pub ta: bool,
    pub tb: bool,
    pub m: i32,
    pub n: i32,
    pub k: i32,
    /// (device address, type, leading dimension)
    pub a: (u64, cudaDataType, i32),
    pub b: (u64, cudaDataType, i32),
    pub c: (u64, cudaDataType, i32),
    pub compute: cublasComputeType_t,
    /// The handle's math mode is CUBLAS_TF32_TENSOR_OP_MATH (f32 products may use TF32).
    pub tf32_math: bool,
    /// The handle allows reduced-precision reductions (its math mode lacks
    /// CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION): a 16-bit C may receive split-K
    /// partial sums each rounded to its type.
    pub reduced_reduction: bool,
}

/// Terms per split-K partial sum when reduced-precision reductions are allowed. The emulation
/// takes the worst case the contract allows: every product longer than this is split, each
/// partial rounded to C's type before they are added.
pub const SPLIT_K: usize = 256;

fn unsupported(detail: impl Into<String>) -> BlasError {
    BlasError::new(cublasStatus_t::CUBLAS_STATUS_NOT_SUPPORTED, detail)
}
fn failed(detail: String) -> BlasError {
    BlasError::new(cublasStatus_t::CUBLAS_STATUS_EXECUTION_FAILED, detail)
}

/// Whether op is a transpose (C is the conjugate transpose: a transpose for real types).
pub fn transposed(op: cublasOperation_t) -> Result<bool> {
    match op {
        cublasOperation_t::CUBLAS_OP_N => Ok(false),
        cublasOperation_t::CUBLAS_OP_T | cublasOperation_t::CUBLAS_OP_C => Ok(true),
        #[allow(unreachable_patterns)]
        o => Err(invalid(format!(
            "cublasGemmEx: operation {o:?}; allowed CUBLAS_OP_N, CUBLAS_OP_T, CUBLAS_OP_C"
        ))),
    }
}

/// How f32 inputs are narrowed before the products, when the call permits it: the fast
/// compute types (32F_FAST_TF32, _16BF, _16F) and the TF32 math mode with 32F compute. The
/// emulation takes what they permit (the real library may or may not use it).
fn narrowed_inputs(call: &Call, ab: Elem) -> Option<fn(f64) -> f64> {
    use cublasComputeType_t::*;
    if ab != Elem::F32 {
        return None;
    }
    match call.compute {
        CUBLAS_COMPUTE_32F_FAST_TF32 => Some(elems::round_tf32),
        CUBLAS_COMPUTE_32F_FAST_16BF => Some(|v| elems::round(v, Elem::Bf16)),
        CUBLAS_COMPUTE_32F_FAST_16F => Some(|v| elems::round(v, Elem::F16)),
        CUBLAS_COMPUTE_32F if call.tf32_math => Some(elems::round_tf32),
        _ => None,
    }
}

/// The element types of (A and B, C) and whether the compute type is f64, per the table.
pub fn types(call: &Call) -> Result<(Elem, Elem, bool)> {
    use cublasComputeType_t::*;
    use cudaDataType::*;
    let (at, bt, ct) = (call.a.1, call.b.1, call.c.1);
    let combo = format!(
        "computeType {:?} with Atype {at:?}, Btype {bt:?}, Ctype {ct:?}",
        call.compute
    );
    if at != bt {
        return Err(unsupported(format!(
            "cublasGemmEx: {combo}: Atype and Btype must be equal"
        )));
    }
    let ok = match call.compute {
        CUBLAS_COMPUTE_32F | CUBLAS_COMPUTE_32F_PEDANTIC => match (at, ct) {
            (CUDA_R_16BF, CUDA_R_16BF) | (CUDA_R_16BF, CUDA_R_32F) => Some((Elem::Bf16, false)),
            (CUDA_R_16F, CUDA_R_16F) | (CUDA_R_16F, CUDA_R_32F) => Some((Elem::F16, false)),
            (CUDA_R_32F, CUDA_R_32F) => Some((Elem::F32, false)),
            (CUDA_R_8I, CUDA_R_32F) => {
                return Err(unsupported(format!(
                    "cublasGemmEx: {combo} is in cuBLAS's table but not emulated"
                )))
            }
            _ => None,
        },
        CUBLAS_COMPUTE_32F_FAST_16F
        | CUBLAS_COMPUTE_32F_FAST_16BF
        | CUBLAS_COMPUTE_32F_FAST_TF32 => {
            matches!((at, ct), (CUDA_R_32F, CUDA_R_32F)).then_some((Elem::F32, false))
        }
        CUBLAS_COMPUTE_64F | CUBLAS_COMPUTE_64F_PEDANTIC => {
            matches!((at, ct), (CUDA_R_64F, CUDA_R_64F)).then_some((Elem::F64, true))
        }
        _ => None,
    };
    let (ab, wide) = ok.ok_or_else(|| {
        unsupported(format!(
            "cublasGemmEx: {combo} is not in cuBLAS's table of supported combinations \
             (e.g. CUBLAS_COMPUTE_32F with 16BF/16BF, 16BF/32F, 16F/16F, 16F/32F, 32F/32F)"
        ))
    })?;
    let c = match ct {
        CUDA_R_32F => Elem::F32,
        CUDA_R_16BF => Elem::Bf16,
        CUDA_R_16F => Elem::F16,
        _ => Elem::F64,
    };
    Ok((ab, c, wide))
}

/// Elements spanned by a stored r×c matrix with leading dimension ld.
fn span(rows: usize, cols: usize, ld: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (cols - 1) * ld + rows
    }
}

/// A call that passed the argument checks: sizes, stored shapes, element types, α and β.
pub struct Checked {
    m: usize,
    n: usize,
    k: usize,
    a_shape: (usize, usize),
    b_shape: (usize, usize),
    ab: Elem,
    ce: Elem,
    wide: bool,
    alpha: f64,
    beta: f64,
}

/// The argument checks cuBLAS makes when it is called (during a graph capture too), before
/// any memory is touched.
///
/// # Safety
/// α and β are null or host scalars of the scale type.
pub unsafe fn check(call: &Call, alpha: *const c_void, beta: *const c_void) -> Result<Checked> {
    let who = "cublasGemmEx";
    for (name, v) in [("m", call.m), ("n", call.n), ("k", call.k)] {
        if v < 0 {
            return Err(invalid(format!("{who}: {name} = {v}; must be >= 0")));
        }
    }
    let (m, n, k) = (call.m as usize, call.n as usize, call.k as usize);
    // Stored shapes (rows, cols) of A and B in column-major terms.
    let (ar, ac) = if call.ta { (k, m) } else { (m, k) };
    let (br, bc) = if call.tb { (n, k) } else { (k, n) };
    for (name, ld, rows, op) in [
        (
            "lda",
            call.a.2,
            ar,
            if call.ta {
                "transa = T: max(1, k)"
            } else {
                "transa = N: max(1, m)"
            },
        ),
        (
            "ldb",
            call.b.2,
            br,
            if call.tb {
                "transb = T: max(1, n)"
            } else {
                "transb = N: max(1, k)"
            },
        ),
        ("ldc", call.c.2, m, "max(1, m)"),
    ] {
        if (ld as i64) < rows.max(1) as i64 {
            return Err(invalid(format!(
                "{who}: {name} = {ld}; must be >= {} ({op})",
                rows.max(1)
            )));
        }
    }
    let (ab, ce, wide) = types(call)?;
    let (alpha, beta) = if wide {
        (elems::host_scalar_f64(alpha), elems::host_scalar_f64(beta))
    } else {
        (
            elems::host_scalar_f32(alpha).map(f64::from),
            elems::host_scalar_f32(beta).map(f64::from),
        )
    };
    let (Some(alpha), Some(beta)) = (alpha, beta) else {
        return Err(invalid(format!("{who}: alpha or beta is null")));
    };
    if m * n > 0 && k > 0 && (call.a.0 == 0 || call.b.0 == 0) {
        return Err(invalid(format!(
            "{who}: A or B is null with m, n, k = {m}, {n}, {k}"
        )));
    }
    if m * n > 0 && call.c.0 == 0 {
        return Err(invalid(format!("{who}: C is null with m, n = {m}, {n}")));
    }
    Ok(Checked {
        m,
        n,
        k,
        a_shape: (ar, ac),
        b_shape: (br, bc),
        ab,
        ce,
        wide,
        alpha,
        beta,
    })
}

/// The checks, then C = α·op(A)·op(B) + β·C.
///
/// # Safety
/// The pointers are device addresses of the emulator runtime; α and β host scalars.
pub unsafe fn run(
    call: &Call,
    alpha: *const c_void,
    beta: *const c_void,
    ws: (u64, usize),
) -> Result<()> {
    let who = "cublasGemmEx";
    let Checked {
        m,
        n,
        k,
        a_shape: (ar, ac),
        b_shape: (br, bc),
        ab,
        ce,
        wide,
        alpha,
        beta,
    } = check(call, alpha, beta)?;
    if m * n == 0 {
        return Ok(());
    }
    let (lda, ldb, ldc) = (call.a.2 as usize, call.b.2 as usize, call.c.2 as usize);
    let (sa, sb) = (span(ar, ac, lda), span(br, bc, ldb));
    let read = |ptr: u64, elems_: usize, e: Elem, name: &str| {
        elems::read_bytes(ptr, elems_ * e.size(), &format!("{who} {name}")).map_err(failed)
    };
    let a_bytes = if k > 0 {
        read(call.a.0, sa, ab, "A")?
    } else {
        Vec::new()
    };
    let b_bytes = if k > 0 {
        read(call.b.0, sb, ab, "B")?
    } else {
        Vec::new()
    };
    // C's m×n elements, compacted to ld = m (only read when β ≠ 0: otherwise it may be garbage).
    let old: Option<Vec<u8>> = if beta != 0.0 {
        let mut v = Vec::with_capacity(m * n * ce.size());
        for j in 0..n {
            let col = call.c.0 + (j * ldc * ce.size()) as u64;
            v.extend(read(col, m, ce, "C")?);
        }
        Some(v)
    } else {
        None
    };
    if ws.1 > 0 {
        crate::cuda::emu::memory::check_write(
            ws.0,
            ws.1.min(GEMM_SCRATCH),
            "cublasGemmEx workspace",
        )
        .map_err(failed)?;
    }
    // The emulator's own product, summed in f64 as the definition reads (it shares no code
    // with the CPU backend's GEMM): element (i, l) of op(A) and (l, j) of op(B), column-major.
    let at = |i: usize, l: usize| if call.ta { l + i * lda } else { i + l * lda };
    let bt = |l: usize, j: usize| if call.tb { j + l * ldb } else { l + j * ldb };
    let split = call.reduced_reduction && ce.size() == 2 && !wide && k > SPLIT_K;
    let narrow = narrowed_inputs(call, ab);
    let sums: Vec<f64> = if k > 0 {
        let input = |bytes: &[u8]| {
            let v = elems::decode(bytes, ab);
            match narrow {
                Some(f) => v.into_iter().map(f).collect(),
                None => v,
            }
        };
        let (av, bv) = (input(&a_bytes), input(&b_bytes));
        (0..m * n)
            .into_par_iter()
            .map(|e| {
                let (i, j) = (e % m, e / m);
                let sum = |ls: std::ops::Range<usize>| -> f64 {
                    ls.map(|l| av[at(i, l)] * bv[bt(l, j)]).sum()
                };
                if split {
                    (0..k)
                        .step_by(SPLIT_K)
                        .map(|l0| elems::round(sum(l0..(l0 + SPLIT_K).min(k)), ce))
                        .sum()
                } else {
                    sum(0..k)
                }
            })
            .collect()
    } else {
        vec![0.0; m * n]
    };
    let prev = old.map(|o| elems::decode(&o, ce));
    // The blend in the compute type: f64 when wide, f32 otherwise.
    let vals = sums
        .iter()
        .enumerate()
        .map(|(e, &v)| match (prev.as_ref().map(|p| p[e]), wide) {
            (Some(o), true) => alpha * v + beta * o,
            (None, true) => alpha * v,
            (Some(o), false) => f64::from((alpha as f32) * (v as f32) + (beta as f32) * (o as f32)),
            (None, false) => f64::from((alpha as f32) * (v as f32)),
        });
    let mut out = Vec::with_capacity(m * n * ce.size());
    elems::encode(vals, ce, &mut out);
    let col = m * ce.size();
    // Every column is checked before the first is written, so a bad extent writes nothing.
    for j in 0..n {
        let dst = call.c.0 + (j * ldc * ce.size()) as u64;
        crate::cuda::emu::memory::check_write(dst, col, &format!("{who} C")).map_err(failed)?;
    }
    for j in 0..n {
        let dst = call.c.0 + (j * ldc * ce.size()) as u64;
        elems::write_bytes(dst, &out[j * col..(j + 1) * col], &format!("{who} C"))
            .map_err(failed)?;
    }
    Ok(())
}
