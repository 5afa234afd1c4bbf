//! The measured algorithm searches (`cudnnFind*AlgorithmEx`) of the emulated cuDNN:
//! requestedAlgoCount >= 1, `perf` and `returnedAlgoCount` non-null, a null workspace only with
//! size 0 (all `BAD_PARAM`); only algorithms whose workspace fits the one offered are
//! considered; the inputs are read and the workspace the returned algorithms use is checked,
//! and the output is left NaN: cuDNN documents its content after a search as arbitrary values;
//! `perf` is filled fastest first with status SUCCESS,
//! the modelled time, the workspace, the determinism and the math type it runs with
//! (`algos::math_of`: CUDNN_DEFAULT_MATH for one without tensor-op availability), and
//! `*returned <= requested`.

#![allow(clippy::too_many_arguments)]

use super::algos::{self, Algo};
use super::compute::{self, exec_failed, Dir};
use super::non_null;
use super::objects::bad;
use super::problem::{self, Problem};
use crate::cuda::driver::cudnn::*;
use std::ffi::{c_int, c_void};

/// One ranked result of a search.
struct Found<A> {
    algo: A,
    time: f32,
    memory: usize,
    determinism: cudnnDeterminism_t,
    math: cudnnMathType_t,
}

/// A `Find*AlgorithmEx`: the checks, the inputs read, the output left NaN, and the ranked
/// algorithms.
///
/// # Safety
/// As the cuDNN call `who`.
unsafe fn find<A: Copy>(
    who: &str,
    dir: Dir,
    p: Problem,
    table: &'static [Algo<A>],
    inputs: [(*const c_void, &str); 2],
    out: (*mut c_void, &str),
    requested: c_int,
    returned: *mut c_int,
    perf_null: bool,
    ws: *mut c_void,
    ws_bytes: usize,
) -> Result<Vec<Found<A>>> {
    non_null(
        &[inputs[0], inputs[1], (out.0 as *const c_void, out.1)],
        who,
    )?;
    if requested < 1 {
        return Err(bad(format!(
            "{who}: requestedAlgoCount = {requested}; must be >= 1"
        )));
    }
    if returned.is_null() || perf_null {
        return Err(bad(format!(
            "{who}: returnedAlgoCount and perfResults must be non-null"
        )));
    }
    if ws.is_null() && ws_bytes > 0 {
        return Err(bad(format!(
            "{who}: workSpace is null with workSpaceSizeInBytes = {ws_bytes}"
        )));
    }
    let ranked = algos::ranked(table, &p, ws_bytes);
    let take: Vec<_> = ranked.into_iter().take(requested as usize).collect();
    let used = take.iter().map(|a| (a.workspace)(&p)).max().unwrap_or(0);
    if used > 0 {
        crate::cuda::emu::memory::check_write(ws as u64, used, &format!("{who} workSpace"))
            .map_err(exec_failed)?;
    }
    // The search reads its inputs; its output, cuDNN documents, is overwritten with arbitrary
    // values: all-ones bytes here (NaN in every float type), so that nothing can take it as a
    // result. No convolution is computed for it.
    compute::read_inputs(dir, &p, who, inputs)?;
    let poison = vec![0xff; compute::out_bytes(dir, &p)];
    crate::cuda::emu::elems::write_bytes(out.0 as u64, &poison, &format!("{who} {}", out.1))
        .map_err(exec_failed)?;
    *returned = take.len() as c_int;
    Ok(take
        .into_iter()
        .map(|a| Found {
            algo: a.algo,
            time: algos::time_ms(a, &p),
            memory: (a.workspace)(&p),
            math: algos::math_of(a, &p),
            determinism: if a.deterministic {
                cudnnDeterminism_t::CUDNN_DETERMINISTIC
            } else {
                cudnnDeterminism_t::CUDNN_NON_DETERMINISTIC
            },
        })
        .collect())
}

/// Fills a perf array from a search's results (one macro for the three perf struct types).
macro_rules! fill_perf {
    ($perf:expr, $found:expr) => {
        for (i, f) in $found.into_iter().enumerate() {
            let slot = &mut *$perf.add(i);
            slot.algo = f.algo;
            slot.status = cudnnStatus_t::CUDNN_STATUS_SUCCESS;
            slot.time = f.time;
            slot.memory = f.memory;
            slot.determinism = f.determinism;
            slot.mathType = f.math;
            slot.reserved = [0; 3];
        }
    };
}

/// # Safety
/// As cudnnFindConvolutionForwardAlgorithmEx.
pub unsafe fn find_convolution_forward_algorithm_ex(
    handle: cudnnHandle_t,
    x_desc: cudnnTensorDescriptor_t,
    x: *const c_void,
    w_desc: cudnnFilterDescriptor_t,
    w: *const c_void,
    conv: cudnnConvolutionDescriptor_t,
    y_desc: cudnnTensorDescriptor_t,
    y: *mut c_void,
    requested: c_int,
    returned: *mut c_int,
    perf: *mut cudnnConvolutionFwdAlgoPerf_t,
    workspace: *mut c_void,
    workspace_bytes: usize,
) -> Result<()> {
    let _op = crate::cuda::emu::order::op(
        super::stream_of(handle),
        c"cudnnFindConvolutionForwardAlgorithmEx",
    );
    let who = "cudnnFindConvolutionForwardAlgorithmEx";
    let p = problem::check(
        handle,
        (x_desc, "xDesc"),
        (w_desc, "wDesc"),
        conv,
        (y_desc, "yDesc"),
    )?;
    let found = find(
        who,
        Dir::Forward,
        p,
        algos::FWD,
        [(x, "x"), (w, "w")],
        (y, "y"),
        requested,
        returned,
        perf.is_null(),
        workspace,
        workspace_bytes,
    )?;
    fill_perf!(perf, found);
    Ok(())
}
/// # Safety
/// As cudnnFindConvolutionBackwardDataAlgorithmEx.
pub unsafe fn find_convolution_backward_data_algorithm_ex(
    handle: cudnnHandle_t,
    w_desc: cudnnFilterDescriptor_t,
    w: *const c_void,
    dy_desc: cudnnTensorDescriptor_t,
    dy: *const c_void,
    conv: cudnnConvolutionDescriptor_t,
    dx_desc: cudnnTensorDescriptor_t,
    dx: *mut c_void,
    requested: c_int,
    returned: *mut c_int,
    perf: *mut cudnnConvolutionBwdDataAlgoPerf_t,
    workspace: *mut c_void,
    workspace_bytes: usize,
) -> Result<()> {
    let _op = crate::cuda::emu::order::op(
        super::stream_of(handle),
        c"cudnnFindConvolutionBackwardDataAlgorithmEx",
    );
    let who = "cudnnFindConvolutionBackwardDataAlgorithmEx";
    let p = problem::check(
        handle,
        (dx_desc, "dxDesc"),
        (w_desc, "wDesc"),
        conv,
        (dy_desc, "dyDesc"),
    )?;
    let found = find(
        who,
        Dir::BackwardData,
        p,
        algos::BWD_DATA,
        [(dy, "dy"), (w, "w")],
        (dx, "dx"),
        requested,
        returned,
        perf.is_null(),
        workspace,
        workspace_bytes,
    )?;
    fill_perf!(perf, found);
    Ok(())
}
/// # Safety
/// As cudnnFindConvolutionBackwardFilterAlgorithmEx.
pub unsafe fn find_convolution_backward_filter_algorithm_ex(
    handle: cudnnHandle_t,
    x_desc: cudnnTensorDescriptor_t,
    x: *const c_void,
    dy_desc: cudnnTensorDescriptor_t,
    dy: *const c_void,
    conv: cudnnConvolutionDescriptor_t,
    dw_desc: cudnnFilterDescriptor_t,
    dw: *mut c_void,
    requested: c_int,
    returned: *mut c_int,
    perf: *mut cudnnConvolutionBwdFilterAlgoPerf_t,
    workspace: *mut c_void,
    workspace_bytes: usize,
) -> Result<()> {
    let _op = crate::cuda::emu::order::op(
        super::stream_of(handle),
        c"cudnnFindConvolutionBackwardFilterAlgorithmEx",
    );
    let who = "cudnnFindConvolutionBackwardFilterAlgorithmEx";
    let p = problem::check(
        handle,
        (x_desc, "xDesc"),
        (dw_desc, "dwDesc"),
        conv,
        (dy_desc, "dyDesc"),
    )?;
    let found = find(
        who,
        Dir::BackwardFilter,
        p,
        algos::BWD_FILTER,
        [(x, "x"), (dy, "dy")],
        (dw, "dw"),
        requested,
        returned,
        perf.is_null(),
        workspace,
        workspace_bytes,
    )?;
    fill_perf!(perf, found);
    Ok(())
}
