//! `cudnnGetConvolution*WorkspaceSize` of the emulated cuDNN: the descriptors are checked as a
//! convolution call checks them (`problem::check`), a null `sizeInBytes` is `BAD_PARAM`, an
//! algorithm the emulation does not list is `NOT_SUPPORTED` (cuDNN's status for an algorithm
//! that does not support the configuration), and a listed one's size is the workspace its
//! convolution call demands and a search reports (`algos`). Host-side: no stream, nothing read.

use super::algos::{self, Algo};
use super::objects::bad;
use super::problem::{self, Problem};
use crate::cuda::driver::cudnn::*;

/// Writes `table`'s entry for `algo`'s workspace on `p` to `size`.
///
/// # Safety
/// `size` is null or writable.
unsafe fn answer<A: std::fmt::Debug + PartialEq + Copy>(
    who: &str,
    table: &'static [Algo<A>],
    algo: A,
    p: &Problem,
    size: *mut usize,
) -> Result<()> {
    if size.is_null() {
        return Err(bad(format!("{who}: sizeInBytes is null")));
    }
    *size = (super::listed(who, table, algo)?.workspace)(p);
    Ok(())
}

/// # Safety
/// As cudnnGetConvolutionForwardWorkspaceSize.
pub unsafe fn get_convolution_forward_workspace_size(
    handle: cudnnHandle_t,
    x_desc: cudnnTensorDescriptor_t,
    w_desc: cudnnFilterDescriptor_t,
    conv: cudnnConvolutionDescriptor_t,
    y_desc: cudnnTensorDescriptor_t,
    algo: cudnnConvolutionFwdAlgo_t,
    size: *mut usize,
) -> Result<()> {
    let x = (x_desc, "xDesc");
    let p = problem::check(handle, x, (w_desc, "wDesc"), conv, (y_desc, "yDesc"))?;
    let who = "cudnnGetConvolutionForwardWorkspaceSize";
    answer(who, algos::FWD, algo, &p, size)
}

/// # Safety
/// As cudnnGetConvolutionBackwardDataWorkspaceSize.
pub unsafe fn get_convolution_backward_data_workspace_size(
    handle: cudnnHandle_t,
    w_desc: cudnnFilterDescriptor_t,
    dy_desc: cudnnTensorDescriptor_t,
    conv: cudnnConvolutionDescriptor_t,
    dx_desc: cudnnTensorDescriptor_t,
    algo: cudnnConvolutionBwdDataAlgo_t,
    size: *mut usize,
) -> Result<()> {
    let x = (dx_desc, "dxDesc");
    let p = problem::check(handle, x, (w_desc, "wDesc"), conv, (dy_desc, "dyDesc"))?;
    let who = "cudnnGetConvolutionBackwardDataWorkspaceSize";
    answer(who, algos::BWD_DATA, algo, &p, size)
}

/// # Safety
/// As cudnnGetConvolutionBackwardFilterWorkspaceSize.
pub unsafe fn get_convolution_backward_filter_workspace_size(
    handle: cudnnHandle_t,
    x_desc: cudnnTensorDescriptor_t,
    dy_desc: cudnnTensorDescriptor_t,
    conv: cudnnConvolutionDescriptor_t,
    dw_desc: cudnnFilterDescriptor_t,
    algo: cudnnConvolutionBwdFilterAlgo_t,
    size: *mut usize,
) -> Result<()> {
    let x = (x_desc, "xDesc");
    let p = problem::check(handle, x, (dw_desc, "dwDesc"), conv, (dy_desc, "dyDesc"))?;
    let who = "cudnnGetConvolutionBackwardFilterWorkspaceSize";
    answer(who, algos::BWD_FILTER, algo, &p, size)
}
