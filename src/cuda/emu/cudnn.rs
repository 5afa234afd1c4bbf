//! Emulated cuDNN. (Skeleton: filled in by the emulated libraries.)

#![allow(clippy::too_many_arguments)]

use crate::cuda::driver::cu::CUstream;
use crate::cuda::driver::cudnn::*;
use std::ffi::{c_int, c_void};

/// The cuDNN version the emulation follows (9.10.0).
pub const VERSION: usize = 91000;

fn todo(what: &str) -> DnnError {
    DnnError::new(
        cudnnStatus_t::CUDNN_STATUS_NOT_SUPPORTED,
        format!("{what} is not emulated yet"),
    )
}

pub fn create_handle() -> Result<cudnnHandle_t> {
    Err(todo("cudnnCreate"))
}
/// # Safety
/// A handle from [`create_handle`].
pub unsafe fn set_stream(_h: cudnnHandle_t, _s: CUstream) -> Result<()> {
    Err(todo("cudnnSetStream"))
}
pub fn create_tensor_descriptor() -> Result<cudnnTensorDescriptor_t> {
    Err(todo("cudnnCreateTensorDescriptor"))
}
pub fn create_filter_descriptor() -> Result<cudnnFilterDescriptor_t> {
    Err(todo("cudnnCreateFilterDescriptor"))
}
pub fn create_convolution_descriptor() -> Result<cudnnConvolutionDescriptor_t> {
    Err(todo("cudnnCreateConvolutionDescriptor"))
}
/// # Safety
/// A descriptor from this module.
pub unsafe fn destroy_tensor_descriptor(_d: cudnnTensorDescriptor_t) -> Result<()> {
    Err(todo("cudnnDestroyTensorDescriptor"))
}
/// # Safety
/// A descriptor from this module.
pub unsafe fn destroy_filter_descriptor(_d: cudnnFilterDescriptor_t) -> Result<()> {
    Err(todo("cudnnDestroyFilterDescriptor"))
}
/// # Safety
/// A descriptor from this module.
pub unsafe fn destroy_convolution_descriptor(_d: cudnnConvolutionDescriptor_t) -> Result<()> {
    Err(todo("cudnnDestroyConvolutionDescriptor"))
}
/// # Safety
/// A descriptor from this module.
pub unsafe fn set_tensor_4d_descriptor(
    _d: cudnnTensorDescriptor_t,
    _format: cudnnTensorFormat_t,
    _dtype: cudnnDataType_t,
    _n: c_int,
    _c: c_int,
    _h: c_int,
    _w: c_int,
) -> Result<()> {
    Err(todo("cudnnSetTensor4dDescriptor"))
}
/// # Safety
/// A descriptor from this module.
pub unsafe fn set_filter_4d_descriptor(
    _d: cudnnFilterDescriptor_t,
    _dtype: cudnnDataType_t,
    _format: cudnnTensorFormat_t,
    _k: c_int,
    _c: c_int,
    _h: c_int,
    _w: c_int,
) -> Result<()> {
    Err(todo("cudnnSetFilter4dDescriptor"))
}
/// # Safety
/// A descriptor from this module.
pub unsafe fn set_convolution_2d_descriptor(
    _d: cudnnConvolutionDescriptor_t,
    _pad_h: c_int,
    _pad_w: c_int,
    _u: c_int,
    _v: c_int,
    _dilation_h: c_int,
    _dilation_w: c_int,
    _mode: cudnnConvolutionMode_t,
    _compute: cudnnDataType_t,
) -> Result<()> {
    Err(todo("cudnnSetConvolution2dDescriptor"))
}
/// # Safety
/// A descriptor from this module.
pub unsafe fn set_convolution_group_count(
    _d: cudnnConvolutionDescriptor_t,
    _groups: c_int,
) -> Result<()> {
    Err(todo("cudnnSetConvolutionGroupCount"))
}
/// # Safety
/// A descriptor from this module.
pub unsafe fn set_convolution_math_type(
    _d: cudnnConvolutionDescriptor_t,
    _math: cudnnMathType_t,
) -> Result<()> {
    Err(todo("cudnnSetConvolutionMathType"))
}
/// # Safety
/// As cudnnFindConvolutionForwardAlgorithmEx.
pub unsafe fn find_convolution_forward_algorithm_ex(
    _handle: cudnnHandle_t,
    _x_desc: cudnnTensorDescriptor_t,
    _x: *const c_void,
    _w_desc: cudnnFilterDescriptor_t,
    _w: *const c_void,
    _conv: cudnnConvolutionDescriptor_t,
    _y_desc: cudnnTensorDescriptor_t,
    _y: *mut c_void,
    _requested: c_int,
    _returned: *mut c_int,
    _perf: *mut cudnnConvolutionFwdAlgoPerf_t,
    _workspace: *mut c_void,
    _workspace_bytes: usize,
) -> Result<()> {
    Err(todo("cudnnFindConvolutionForwardAlgorithmEx"))
}
/// # Safety
/// As cudnnFindConvolutionBackwardDataAlgorithmEx.
pub unsafe fn find_convolution_backward_data_algorithm_ex(
    _handle: cudnnHandle_t,
    _w_desc: cudnnFilterDescriptor_t,
    _w: *const c_void,
    _dy_desc: cudnnTensorDescriptor_t,
    _dy: *const c_void,
    _conv: cudnnConvolutionDescriptor_t,
    _dx_desc: cudnnTensorDescriptor_t,
    _dx: *mut c_void,
    _requested: c_int,
    _returned: *mut c_int,
    _perf: *mut cudnnConvolutionBwdDataAlgoPerf_t,
    _workspace: *mut c_void,
    _workspace_bytes: usize,
) -> Result<()> {
    Err(todo("cudnnFindConvolutionBackwardDataAlgorithmEx"))
}
/// # Safety
/// As cudnnFindConvolutionBackwardFilterAlgorithmEx.
pub unsafe fn find_convolution_backward_filter_algorithm_ex(
    _handle: cudnnHandle_t,
    _x_desc: cudnnTensorDescriptor_t,
    _x: *const c_void,
    _dy_desc: cudnnTensorDescriptor_t,
    _dy: *const c_void,
    _conv: cudnnConvolutionDescriptor_t,
    _dw_desc: cudnnFilterDescriptor_t,
    _dw: *mut c_void,
    _requested: c_int,
    _returned: *mut c_int,
    _perf: *mut cudnnConvolutionBwdFilterAlgoPerf_t,
    _workspace: *mut c_void,
    _workspace_bytes: usize,
) -> Result<()> {
    Err(todo("cudnnFindConvolutionBackwardFilterAlgorithmEx"))
}
/// # Safety
/// As cudnnConvolutionForward.
pub unsafe fn convolution_forward(
    _handle: cudnnHandle_t,
    _alpha: *const c_void,
    _x_desc: cudnnTensorDescriptor_t,
    _x: *const c_void,
    _w_desc: cudnnFilterDescriptor_t,
    _w: *const c_void,
    _conv: cudnnConvolutionDescriptor_t,
    _algo: cudnnConvolutionFwdAlgo_t,
    _workspace: *mut c_void,
    _workspace_bytes: usize,
    _beta: *const c_void,
    _y_desc: cudnnTensorDescriptor_t,
    _y: *mut c_void,
) -> Result<()> {
    Err(todo("cudnnConvolutionForward"))
}
/// # Safety
/// As cudnnConvolutionBackwardData.
pub unsafe fn convolution_backward_data(
    _handle: cudnnHandle_t,
    _alpha: *const c_void,
    _w_desc: cudnnFilterDescriptor_t,
    _w: *const c_void,
    _dy_desc: cudnnTensorDescriptor_t,
    _dy: *const c_void,
    _conv: cudnnConvolutionDescriptor_t,
    _algo: cudnnConvolutionBwdDataAlgo_t,
    _workspace: *mut c_void,
    _workspace_bytes: usize,
    _beta: *const c_void,
    _dx_desc: cudnnTensorDescriptor_t,
    _dx: *mut c_void,
) -> Result<()> {
    Err(todo("cudnnConvolutionBackwardData"))
}
/// # Safety
/// As cudnnConvolutionBackwardFilter.
pub unsafe fn convolution_backward_filter(
    _handle: cudnnHandle_t,
    _alpha: *const c_void,
    _x_desc: cudnnTensorDescriptor_t,
    _x: *const c_void,
    _dy_desc: cudnnTensorDescriptor_t,
    _dy: *const c_void,
    _conv: cudnnConvolutionDescriptor_t,
    _algo: cudnnConvolutionBwdFilterAlgo_t,
    _workspace: *mut c_void,
    _workspace_bytes: usize,
    _beta: *const c_void,
    _dw_desc: cudnnFilterDescriptor_t,
    _dw: *mut c_void,
) -> Result<()> {
    Err(todo("cudnnConvolutionBackwardFilter"))
}
