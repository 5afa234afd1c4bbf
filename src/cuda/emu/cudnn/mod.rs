//! Emulated cuDNN (9.10 legacy convolution API): real handle and descriptor objects, every
//! argument checked as cuDNN documents it, computed by a direct convolution of its own (`direct`).
//!
//! - `objects`: handles and descriptors, and the rules of their setters;
//! - `problem`: the checks shared by every convolution call (descriptor agreement, data/compute
//!   configurations, output dims);
//! - `algos`: the algorithms listed per direction and the workspace each needs;
//! - `compute`: the numerics (CPU reference, α/β);
//! - `find`: the measured algorithm searches (`cudnnFind*AlgorithmEx`);
//! - `workspace_size`: `cudnnGetConvolution*WorkspaceSize`, each listed algorithm's workspace;
//! - this file: the entry points the driver layer calls, and the per-call rules:
//!   pointers non-null (`BAD_PARAM`); the algorithm one the emulation lists (`NOT_SUPPORTED`,
//!   cuDNN's status for an algorithm that does not support the configuration); the workspace at
//!   least what that algorithm needs (`BAD_PARAM`) and non-null when it needs any; the workspace
//!   range written (`check_write`). `Find*AlgorithmEx`: requestedAlgoCount ≥ 1, `perf` and
//!   `returnedAlgoCount` non-null (`BAD_PARAM`); it runs the convolution and leaves the output
//!   NaN (cuDNN documents it as overwritten with arbitrary values), fills `perf` fastest first with status SUCCESS, time, memory,
//!   determinism and the math type the algorithm ran with (CUDNN_DEFAULT_MATH for one without
//!   tensor-op availability, `algos::math_of`), and returns at most `requested` results,
//!   considering only the algorithms whose workspace fits the one offered.
//!
//! FLOAT data run by an algorithm with tensor cores under any math type but CUDNN_FMA_MATH is
//! multiplied in TF32 (`algos::tf32`), as on Ampere-class GPUs and newer.
//!
//! Refusals return before anything is written. A memory check failing (out of bounds, unwritten
//! input) is `EXECUTION_FAILED`, the status of a kernel that faulted.

#![allow(clippy::too_many_arguments)]

mod algos;
mod compute;
mod direct;
mod find;
mod objects;
mod problem;
mod workspace_size;

use crate::cuda::driver::cu::CUstream;
use crate::cuda::driver::cudnn::*;
use algos::Algo;
use compute::{exec_failed, Dir};
use objects::{bad, unsupported};
use problem::Problem;

pub use find::{
    find_convolution_backward_data_algorithm_ex, find_convolution_backward_filter_algorithm_ex,
    find_convolution_forward_algorithm_ex,
};
use std::ffi::{c_int, c_void};
pub use workspace_size::{
    get_convolution_backward_data_workspace_size, get_convolution_backward_filter_workspace_size,
    get_convolution_forward_workspace_size,
};

/// The cuDNN version the emulation follows (9.10.0).
pub const VERSION: usize = 91000;

pub fn create_handle() -> Result<cudnnHandle_t> {
    Ok(objects::create(&objects::HANDLES, objects::Handle { stream: 0 })? as cudnnHandle_t)
}
/// # Safety
/// A handle from [`create_handle`].
pub unsafe fn set_stream(h: cudnnHandle_t, s: CUstream) -> Result<()> {
    objects::with(&objects::HANDLES, h as usize, "handle", |x| {
        x.stream = s as usize
    })
}
/// The stream of a handle (null for an unknown one: its call is refused by its own checks).
pub(super) fn stream_of(h: cudnnHandle_t) -> CUstream {
    objects::with(&objects::HANDLES, h as usize, "handle", |x| x.stream)
        .map_or(std::ptr::null_mut(), |s| s as CUstream)
}
pub fn create_tensor_descriptor() -> Result<cudnnTensorDescriptor_t> {
    Ok(objects::create(&objects::TENSORS, objects::TensorDesc(None))? as _)
}
pub fn create_filter_descriptor() -> Result<cudnnFilterDescriptor_t> {
    Ok(objects::create(&objects::FILTERS, objects::FilterDesc(None))? as _)
}
pub fn create_convolution_descriptor() -> Result<cudnnConvolutionDescriptor_t> {
    Ok(objects::create(&objects::CONVS, objects::new_conv())? as _)
}
/// # Safety
/// A descriptor from this module.
pub unsafe fn destroy_tensor_descriptor(d: cudnnTensorDescriptor_t) -> Result<()> {
    objects::destroy(&objects::TENSORS, d as usize, "tensor descriptor")
}
/// # Safety
/// A descriptor from this module.
pub unsafe fn destroy_filter_descriptor(d: cudnnFilterDescriptor_t) -> Result<()> {
    objects::destroy(&objects::FILTERS, d as usize, "filter descriptor")
}
/// # Safety
/// A descriptor from this module.
pub unsafe fn destroy_convolution_descriptor(d: cudnnConvolutionDescriptor_t) -> Result<()> {
    objects::destroy(&objects::CONVS, d as usize, "convolution descriptor")
}
/// # Safety
/// A descriptor from this module.
pub unsafe fn set_tensor_4d_descriptor(
    d: cudnnTensorDescriptor_t,
    format: cudnnTensorFormat_t,
    dtype: cudnnDataType_t,
    n: c_int,
    c: c_int,
    h: c_int,
    w: c_int,
) -> Result<()> {
    objects::set_tensor(d as usize, format, dtype, [n, c, h, w])
}
/// # Safety
/// A descriptor from this module.
pub unsafe fn set_filter_4d_descriptor(
    d: cudnnFilterDescriptor_t,
    dtype: cudnnDataType_t,
    format: cudnnTensorFormat_t,
    k: c_int,
    c: c_int,
    h: c_int,
    w: c_int,
) -> Result<()> {
    objects::set_filter(d as usize, dtype, format, [k, c, h, w])
}
/// # Safety
/// A descriptor from this module.
pub unsafe fn set_convolution_2d_descriptor(
    d: cudnnConvolutionDescriptor_t,
    pad_h: c_int,
    pad_w: c_int,
    u: c_int,
    v: c_int,
    dilation_h: c_int,
    dilation_w: c_int,
    mode: cudnnConvolutionMode_t,
    compute: cudnnDataType_t,
) -> Result<()> {
    objects::set_conv(
        d as usize,
        [pad_h, pad_w],
        [u, v],
        [dilation_h, dilation_w],
        mode,
        compute,
    )
}
/// # Safety
/// A descriptor from this module.
pub unsafe fn set_convolution_group_count(
    d: cudnnConvolutionDescriptor_t,
    groups: c_int,
) -> Result<()> {
    objects::set_groups(d as usize, groups)
}
/// # Safety
/// A descriptor from this module.
pub unsafe fn set_convolution_math_type(
    d: cudnnConvolutionDescriptor_t,
    math: cudnnMathType_t,
) -> Result<()> {
    objects::set_math(d as usize, math)
}

/// # Safety
/// Descriptors from this module; the four outputs writable (null ones are `BAD_PARAM`).
pub unsafe fn get_convolution_2d_forward_output_dim(
    conv: cudnnConvolutionDescriptor_t,
    x_desc: cudnnTensorDescriptor_t,
    w_desc: cudnnFilterDescriptor_t,
    n: *mut c_int,
    c: *mut c_int,
    h: *mut c_int,
    w: *mut c_int,
) -> Result<()> {
    let outs = [n, c, h, w];
    if outs.iter().any(|p| p.is_null()) {
        return Err(bad(
            "cudnnGetConvolution2dForwardOutputDim: an output pointer (n, c, h or w) is null",
        ));
    }
    let dims = problem::forward_output_dims(conv, x_desc, w_desc)?;
    for (p, v) in outs.into_iter().zip(dims) {
        // Every dimension came from a c_int setter, and an output is never larger.
        *p = v as c_int;
    }
    Ok(())
}

/// Refuses null data pointers, naming them.
pub(super) fn non_null(ptrs: &[(*const c_void, &str)], who: &str) -> Result<()> {
    match ptrs.iter().find(|(p, _)| p.is_null()) {
        Some((_, name)) => Err(bad(format!("{who}: {name} is null"))),
        None => Ok(()),
    }
}

/// `table`'s entry for `algo`, else NOT_SUPPORTED naming the algorithms the emulation lists.
pub(super) fn listed<A: std::fmt::Debug + PartialEq + Copy>(
    who: &str,
    table: &'static [Algo<A>],
    algo: A,
) -> Result<&'static Algo<A>> {
    algos::lookup(table, algo).ok_or_else(|| {
        let listed: Vec<String> = table.iter().map(|a| format!("{:?}", a.algo)).collect();
        unsupported(format!(
            "{who}: algorithm {algo:?} is not available for this configuration in the \
             emulation (listed: {})",
            listed.join(", ")
        ))
    })
}

/// The workspace rules of a convolution call with a chosen algorithm; marks it written.
/// Returns the algorithm's entry.
///
/// # Safety
/// `ws` is a device address of the emulator runtime or null.
unsafe fn workspace<A: std::fmt::Debug + PartialEq + Copy>(
    who: &str,
    table: &'static [Algo<A>],
    algo: A,
    p: &Problem,
    ws: *mut c_void,
    bytes: usize,
) -> Result<&'static Algo<A>> {
    let a = listed(who, table, algo)?;
    let need = (a.workspace)(p);
    if bytes < need {
        return Err(bad(format!(
            "{who}: workSpaceSizeInBytes = {bytes}; {algo:?} needs {need} for this convolution"
        )));
    }
    if need > 0 && ws.is_null() {
        return Err(bad(format!(
            "{who}: workSpace is null; {algo:?} needs {need} bytes"
        )));
    }
    if need > 0 {
        crate::cuda::emu::memory::check_write(ws as u64, need, &format!("{who} workSpace"))
            .map_err(exec_failed)?;
    }
    Ok(a)
}

/// A convolution call: the checks, then the computation.
///
/// # Safety
/// As the cuDNN call `who`.
unsafe fn convolve<A: std::fmt::Debug + PartialEq + Copy>(
    who: &'static str,
    dir: Dir,
    p: Problem,
    table: &'static [Algo<A>],
    algo: A,
    inputs: [(*const c_void, &'static str); 2],
    out: (*mut c_void, &'static str),
    alpha: *const c_void,
    beta: *const c_void,
    ws: *mut c_void,
    ws_bytes: usize,
) -> Result<()> {
    non_null(
        &[inputs[0], inputs[1], (out.0 as *const c_void, out.1)],
        who,
    )?;
    let s = compute::scalars(&p, alpha, beta)?;
    let a = workspace(who, table, algo, &p, ws, ws_bytes)?;
    // The math type is the descriptor's at the call: a choice measured under another one
    // (FMA for f32, say) but run without setting it gets that math type's numerics.
    let how = compute::Numerics {
        tf32: algos::tf32(a, &p),
        deterministic: a.deterministic,
    };
    if crate::cuda::emu::graph::capturing() {
        // Descriptors and scalars are resolved now: the graph keeps the call as captured.
        return crate::cuda::emu::graph::run_or_record(Box::new(move || {
            compute::run(dir, &p, who, inputs, out, &s, how).map_err(|e| format!("{e:?}"))
        }))
        .map_err(compute::exec_failed);
    }
    compute::run(dir, &p, who, inputs, out, &s, how)
}

/// # Safety
/// As cudnnConvolutionForward.
pub unsafe fn convolution_forward(
    handle: cudnnHandle_t,
    alpha: *const c_void,
    x_desc: cudnnTensorDescriptor_t,
    x: *const c_void,
    w_desc: cudnnFilterDescriptor_t,
    w: *const c_void,
    conv: cudnnConvolutionDescriptor_t,
    algo: cudnnConvolutionFwdAlgo_t,
    workspace: *mut c_void,
    workspace_bytes: usize,
    beta: *const c_void,
    y_desc: cudnnTensorDescriptor_t,
    y: *mut c_void,
) -> Result<()> {
    let _op = crate::cuda::emu::order::op(stream_of(handle), c"cudnnConvolutionForward");
    let p = problem::check(
        handle,
        (x_desc, "xDesc"),
        (w_desc, "wDesc"),
        conv,
        (y_desc, "yDesc"),
    )?;
    convolve(
        "cudnnConvolutionForward",
        Dir::Forward,
        p,
        algos::FWD,
        algo,
        [(x, "x"), (w, "w")],
        (y, "y"),
        alpha,
        beta,
        workspace,
        workspace_bytes,
    )
}
/// # Safety
/// As cudnnConvolutionBackwardData.
pub unsafe fn convolution_backward_data(
    handle: cudnnHandle_t,
    alpha: *const c_void,
    w_desc: cudnnFilterDescriptor_t,
    w: *const c_void,
    dy_desc: cudnnTensorDescriptor_t,
    dy: *const c_void,
    conv: cudnnConvolutionDescriptor_t,
    algo: cudnnConvolutionBwdDataAlgo_t,
    workspace: *mut c_void,
    workspace_bytes: usize,
    beta: *const c_void,
    dx_desc: cudnnTensorDescriptor_t,
    dx: *mut c_void,
) -> Result<()> {
    let _op = crate::cuda::emu::order::op(stream_of(handle), c"cudnnConvolutionBackwardData");
    let p = problem::check(
        handle,
        (dx_desc, "dxDesc"),
        (w_desc, "wDesc"),
        conv,
        (dy_desc, "dyDesc"),
    )?;
    convolve(
        "cudnnConvolutionBackwardData",
        Dir::BackwardData,
        p,
        algos::BWD_DATA,
        algo,
        [(dy, "dy"), (w, "w")],
        (dx, "dx"),
        alpha,
        beta,
        workspace,
        workspace_bytes,
    )
}
/// # Safety
/// As cudnnConvolutionBackwardFilter.
pub unsafe fn convolution_backward_filter(
    handle: cudnnHandle_t,
    alpha: *const c_void,
    x_desc: cudnnTensorDescriptor_t,
    x: *const c_void,
    dy_desc: cudnnTensorDescriptor_t,
    dy: *const c_void,
    conv: cudnnConvolutionDescriptor_t,
    algo: cudnnConvolutionBwdFilterAlgo_t,
    workspace: *mut c_void,
    workspace_bytes: usize,
    beta: *const c_void,
    dw_desc: cudnnFilterDescriptor_t,
    dw: *mut c_void,
) -> Result<()> {
    let _op = crate::cuda::emu::order::op(stream_of(handle), c"cudnnConvolutionBackwardFilter");
    let p = problem::check(
        handle,
        (x_desc, "xDesc"),
        (dw_desc, "dwDesc"),
        conv,
        (dy_desc, "dyDesc"),
    )?;
    convolve(
        "cudnnConvolutionBackwardFilter",
        Dir::BackwardFilter,
        p,
        algos::BWD_FILTER,
        algo,
        [(x, "x"), (dy, "dy")],
        (dw, "dw"),
        alpha,
        beta,
        workspace,
        workspace_bytes,
    )
}
