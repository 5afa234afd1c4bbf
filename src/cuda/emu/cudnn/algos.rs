//! The algorithms the emulated cuDNN lists for each convolution direction, with the workspace
//! each needs (declared here, reported by Find and required by the convolution calls) and a
//! modelled time (Find's ranking: proportional to the multiply-adds).
//!
//! Every listed algorithm computes the CPU reference's result; they differ in the workspace
//! they demand, so the callers' workspace handling is exercised. Determinism is reported as
//! cuDNN reports it for the algorithm (BWD_DATA_ALGO_0 and BWD_FILTER_ALGO_0/3 use atomics on
//! a GPU), and those algorithms' last bits differ from call to call here too
//! (`compute::vary_last_bits`). They are modelled as the fastest of their direction, the case
//! where a choice that wants the same bits on every run must pass over the fastest one (which
//! of them is fastest on a GPU depends on the shape).

use super::problem::Problem;
use crate::cuda::driver::cudnn::{
    cudnnConvolutionBwdDataAlgo_t as Bd, cudnnConvolutionBwdFilterAlgo_t as Bf,
    cudnnConvolutionFwdAlgo_t as Fw, cudnnMathType_t,
};
use crate::cuda::emu::elems::Elem;

pub struct Algo<A> {
    pub algo: A,
    pub deterministic: bool,
    /// Has a tensor-core variant (run under CUDNN_TENSOR_OP_MATH when asked and the problem
    /// allows it; see [`math_of`]).
    pub tensor_ops: bool,
    /// Modelled milliseconds per 10^6 multiply-adds.
    pub ms_per_mmac: f64,
    pub workspace: fn(&Problem) -> usize,
}

fn none(_: &Problem) -> usize {
    0
}
/// One image's receptive fields (im2col) in the data type.
fn im2col(p: &Problem) -> usize {
    p.g.ho * p.g.wo * p.g.k() * p.elem.size()
}
/// Precomputed input offsets: one i32 per filter tap and output pixel row.
fn offsets(p: &Problem) -> usize {
    4 * p.g.kh * p.g.kw * p.g.ho.max(1)
}
/// An fp32 copy of the filter gradient (accumulated, then converted).
fn f32_filter(p: &Problem) -> usize {
    4 * p.g.cout * p.g.k()
}

pub const FWD: &[Algo<Fw>] = &[
    Algo {
        algo: Fw::CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
        deterministic: true,
        tensor_ops: true,
        ms_per_mmac: 0.6e-3,
        workspace: offsets,
    },
    Algo {
        algo: Fw::CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
        deterministic: true,
        tensor_ops: false,
        ms_per_mmac: 0.8e-3,
        workspace: im2col,
    },
    Algo {
        algo: Fw::CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
        deterministic: true,
        tensor_ops: false,
        ms_per_mmac: 1.0e-3,
        workspace: none,
    },
];

pub const BWD_DATA: &[Algo<Bd>] = &[
    Algo {
        algo: Bd::CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
        deterministic: true,
        tensor_ops: true,
        ms_per_mmac: 0.7e-3,
        workspace: im2col,
    },
    Algo {
        algo: Bd::CUDNN_CONVOLUTION_BWD_DATA_ALGO_0,
        deterministic: false,
        tensor_ops: false,
        ms_per_mmac: 0.6e-3,
        workspace: none,
    },
];

pub const BWD_FILTER: &[Algo<Bf>] = &[
    Algo {
        algo: Bf::CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
        deterministic: true,
        tensor_ops: true,
        ms_per_mmac: 0.7e-3,
        workspace: f32_filter,
    },
    Algo {
        algo: Bf::CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3,
        deterministic: false,
        tensor_ops: false,
        ms_per_mmac: 0.65e-3,
        workspace: im2col,
    },
    Algo {
        algo: Bf::CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0,
        deterministic: false,
        tensor_ops: false,
        ms_per_mmac: 0.6e-3,
        workspace: none,
    },
];

/// The math type algorithm `a` runs (and a search reports it) with for problem `p`, whose
/// descriptor asks for `p.math`: cuDNN returns an algorithm without tensor-op availability with
/// CUDNN_DEFAULT_MATH. Here that is an algorithm without a tensor-core variant, or a 16-bit
/// problem whose channels per group are not multiples of 8 (the tensor-core kernels' NHWC
/// alignment).
pub fn math_of<A>(a: &Algo<A>, p: &Problem) -> cudnnMathType_t {
    use cudnnMathType_t::*;
    let asks = matches!(
        p.math,
        CUDNN_TENSOR_OP_MATH | CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION
    );
    let aligned = p.elem.size() != 2 || (p.g.cin_g % 8 == 0 && p.g.cout_g % 8 == 0);
    if asks && !(a.tensor_ops && aligned) {
        CUDNN_DEFAULT_MATH
    } else {
        p.math
    }
}

/// Whether algorithm `a` multiplies problem `p`'s FLOAT data in TF32 (inputs rounded to 10
/// mantissa bits) on tensor cores: cuDNN permits it under every math type but
/// CUDNN_FMA_MATH on Ampere-class and newer GPUs, which the emulated device is.
pub fn tf32<A>(a: &Algo<A>, p: &Problem) -> bool {
    p.elem == Elem::F32 && a.tensor_ops && p.math != cudnnMathType_t::CUDNN_FMA_MATH
}

/// The listed algorithm `a` of `table`, if any.
pub fn lookup<A: PartialEq>(table: &'static [Algo<A>], a: A) -> Option<&'static Algo<A>> {
    table.iter().find(|e| e.algo == a)
}

/// The listed algorithms whose workspace fits `bytes`, fastest first (ties keep table order).
pub fn ranked<A>(table: &'static [Algo<A>], p: &Problem, bytes: usize) -> Vec<&'static Algo<A>> {
    let mut v: Vec<_> = table.iter().filter(|a| (a.workspace)(p) <= bytes).collect();
    v.sort_by(|a, b| a.ms_per_mmac.total_cmp(&b.ms_per_mmac));
    v
}

/// Modelled time in milliseconds.
pub fn time_ms<A>(a: &Algo<A>, p: &Problem) -> f32 {
    (p.g.macs() as f64 / 1e6 * a.ms_per_mmac) as f32
}
