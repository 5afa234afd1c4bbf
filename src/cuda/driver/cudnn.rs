//! The cuDNN calls the backend makes: descriptors of NHWC tensors, KRSC filters and 2-D
//! convolutions, the workspace each algorithm needs, the measured algorithm search, and the three
//! convolution directions.

use super::counters::{self as c, bump};
use super::route;
use cudarc::cudnn::{result, sys};
use std::ffi::{c_int, c_void};

pub use sys::{
    cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t,
    cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t,
    cudnnConvolutionDescriptor_t, cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t,
    cudnnConvolutionMode_t, cudnnDataType_t, cudnnDeterminism_t, cudnnFilterDescriptor_t,
    cudnnHandle_t, cudnnMathType_t, cudnnStatus_t, cudnnTensorDescriptor_t, cudnnTensorFormat_t,
};

/// One result of a measured search (cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t, which
/// share this layout) with its enum fields read as plain integers: a newer cuDNN may write an
/// algorithm, status or math value the bindings' enums do not list, and a Rust enum holding an
/// unlisted value is undefined behaviour. The search writes these; `conv_algo` interprets them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AlgoPerf {
    pub algo: c_int,
    pub status: c_int,
    pub time: f32,
    pub memory: usize,
    pub determinism: c_int,
    pub math_type: c_int,
    pub reserved: [c_int; 3],
}

// The three C structs are this one, field for field (cast between them in the search).
const _: () = {
    use std::mem::{align_of, size_of};
    assert!(size_of::<AlgoPerf>() == size_of::<cudnnConvolutionFwdAlgoPerf_t>());
    assert!(size_of::<AlgoPerf>() == size_of::<cudnnConvolutionBwdDataAlgoPerf_t>());
    assert!(size_of::<AlgoPerf>() == size_of::<cudnnConvolutionBwdFilterAlgoPerf_t>());
    assert!(align_of::<AlgoPerf>() == align_of::<cudnnConvolutionFwdAlgoPerf_t>());
    assert!(std::mem::offset_of!(AlgoPerf, memory) == 16);
    assert!(std::mem::offset_of!(cudnnConvolutionFwdAlgoPerf_t, memory) == 16);
    assert!(std::mem::offset_of!(cudnnConvolutionFwdAlgoPerf_t, mathType) == 28);
    assert!(std::mem::offset_of!(AlgoPerf, math_type) == 28);
};

/// A failed cuDNN call: its status, and what the emulated library found (empty on a GPU).
#[derive(Clone)]
pub struct DnnError {
    pub status: cudnnStatus_t,
    pub detail: String,
}

impl DnnError {
    pub fn new(status: cudnnStatus_t, detail: impl Into<String>) -> Self {
        DnnError {
            status,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Debug for DnnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{:?}", self.status)
        } else {
            write!(f, "{:?}: {}", self.status, self.detail)
        }
    }
}

pub type Result<T> = std::result::Result<T, DnnError>;

fn real<T>(r: std::result::Result<T, result::CudnnError>) -> Result<T> {
    r.map_err(|e| DnnError::new(e.0, ""))
}

pub fn is_present() -> bool {
    route!(real => unsafe { sys::is_culib_present() }, emu => true)
}

/// cuDNN's version number (for example 91000 for 9.10.0).
pub fn version() -> usize {
    route!(
        real => unsafe { sys::cudnnGetVersion() },
        emu => crate::cuda::emu::cudnn::VERSION,
    )
}

pub fn create_handle() -> Result<cudnnHandle_t> {
    route!(
        real => real(result::create_handle()),
        emu => crate::cuda::emu::cudnn::create_handle(),
    )
}

/// # Safety
/// A live handle and stream.
pub unsafe fn set_stream(handle: cudnnHandle_t, stream: super::cu::CUstream) -> Result<()> {
    route!(
        real => real(result::set_stream(handle, stream as sys::cudaStream_t)),
        emu => crate::cuda::emu::cudnn::set_stream(handle, stream),
    )
}

pub fn create_tensor_descriptor() -> Result<cudnnTensorDescriptor_t> {
    route!(
        real => real(result::create_tensor_descriptor()),
        emu => crate::cuda::emu::cudnn::create_tensor_descriptor(),
    )
}

pub fn create_filter_descriptor() -> Result<cudnnFilterDescriptor_t> {
    route!(
        real => real(result::create_filter_descriptor()),
        emu => crate::cuda::emu::cudnn::create_filter_descriptor(),
    )
}

pub fn create_convolution_descriptor() -> Result<cudnnConvolutionDescriptor_t> {
    route!(
        real => real(result::create_convolution_descriptor()),
        emu => crate::cuda::emu::cudnn::create_convolution_descriptor(),
    )
}

/// One cuDNN entry point returning only a status: the real symbol, or the emulated function of
/// the same name in `crate::cuda::emu::cudnn`.
macro_rules! status_fn {
    ($(#[$doc:meta])* $name:ident => $sym:ident($($arg:ident: $ty:ty),* $(,)?); $($count:ident)?) => {
        $(#[$doc])*
        /// # Safety
        /// Live handles and descriptors; pointers to device memory of the described sizes.
        #[allow(clippy::too_many_arguments)]
        pub unsafe fn $name($($arg: $ty),*) -> Result<()> {
            $(let _ = stringify!($count); bump(&c::LIBRARY_CALLS, 1);)?
            route!(
                real => real(sys::$sym($($arg),*).result()),
                emu => crate::cuda::emu::cudnn::$name($($arg),*),
            )
        }
    };
}

status_fn!(destroy_tensor_descriptor => cudnnDestroyTensorDescriptor(d: cudnnTensorDescriptor_t););
status_fn!(destroy_filter_descriptor => cudnnDestroyFilterDescriptor(d: cudnnFilterDescriptor_t););
status_fn!(destroy_convolution_descriptor => cudnnDestroyConvolutionDescriptor(d: cudnnConvolutionDescriptor_t););
status_fn!(set_tensor_4d_descriptor => cudnnSetTensor4dDescriptor(
    d: cudnnTensorDescriptor_t, format: cudnnTensorFormat_t, dtype: cudnnDataType_t,
    n: c_int, c: c_int, h: c_int, w: c_int,
););
status_fn!(set_filter_4d_descriptor => cudnnSetFilter4dDescriptor(
    d: cudnnFilterDescriptor_t, dtype: cudnnDataType_t, format: cudnnTensorFormat_t,
    k: c_int, c: c_int, h: c_int, w: c_int,
););
status_fn!(set_convolution_2d_descriptor => cudnnSetConvolution2dDescriptor(
    d: cudnnConvolutionDescriptor_t, pad_h: c_int, pad_w: c_int, u: c_int, v: c_int,
    dilation_h: c_int, dilation_w: c_int, mode: cudnnConvolutionMode_t,
    compute: cudnnDataType_t,
););
status_fn!(set_convolution_group_count => cudnnSetConvolutionGroupCount(
    d: cudnnConvolutionDescriptor_t, groups: c_int,
););
status_fn!(set_convolution_math_type => cudnnSetConvolutionMathType(
    d: cudnnConvolutionDescriptor_t, math: cudnnMathType_t,
););
status_fn!(
    /// The output's (n, c, h, w) of a forward convolution of `x_desc` by `w_desc`: BAD_PARAM
    /// when a descriptor is unset, x's channels are not the filter's c × groups, or the dilated
    /// filter is larger than the padded input. Host-only: needs no GPU.
    get_convolution_2d_forward_output_dim => cudnnGetConvolution2dForwardOutputDim(
    conv: cudnnConvolutionDescriptor_t, x_desc: cudnnTensorDescriptor_t,
    w_desc: cudnnFilterDescriptor_t, n: *mut c_int, c: *mut c_int, h: *mut c_int, w: *mut c_int,
););
status_fn!(
    /// The workspace `algo` needs for this forward convolution under the descriptor's math
    /// type; NOT_SUPPORTED when the algorithm does not support it. Host-side: launches nothing.
    get_convolution_forward_workspace_size => cudnnGetConvolutionForwardWorkspaceSize(
    handle: cudnnHandle_t, x_desc: cudnnTensorDescriptor_t, w_desc: cudnnFilterDescriptor_t,
    conv: cudnnConvolutionDescriptor_t, y_desc: cudnnTensorDescriptor_t,
    algo: cudnnConvolutionFwdAlgo_t, size: *mut usize,
););
status_fn!(
    /// As [`get_convolution_forward_workspace_size`], for a backward-data algorithm.
    get_convolution_backward_data_workspace_size => cudnnGetConvolutionBackwardDataWorkspaceSize(
    handle: cudnnHandle_t, w_desc: cudnnFilterDescriptor_t, dy_desc: cudnnTensorDescriptor_t,
    conv: cudnnConvolutionDescriptor_t, dx_desc: cudnnTensorDescriptor_t,
    algo: cudnnConvolutionBwdDataAlgo_t, size: *mut usize,
););
status_fn!(
    /// As [`get_convolution_forward_workspace_size`], for a backward-filter algorithm.
    get_convolution_backward_filter_workspace_size => cudnnGetConvolutionBackwardFilterWorkspaceSize(
    handle: cudnnHandle_t, x_desc: cudnnTensorDescriptor_t, dy_desc: cudnnTensorDescriptor_t,
    conv: cudnnConvolutionDescriptor_t, dw_desc: cudnnFilterDescriptor_t,
    algo: cudnnConvolutionBwdFilterAlgo_t, size: *mut usize,
););
status_fn!(
    /// Runs and times the forward algorithms; results sorted by time.
    find_convolution_forward_algorithm_ex => cudnnFindConvolutionForwardAlgorithmEx(
    handle: cudnnHandle_t, x_desc: cudnnTensorDescriptor_t, x: *const c_void,
    w_desc: cudnnFilterDescriptor_t, w: *const c_void, conv: cudnnConvolutionDescriptor_t,
    y_desc: cudnnTensorDescriptor_t, y: *mut c_void, requested: c_int, returned: *mut c_int,
    perf: *mut cudnnConvolutionFwdAlgoPerf_t, workspace: *mut c_void, workspace_bytes: usize,
); counted);
status_fn!(
    /// Runs and times the backward-data algorithms; results sorted by time.
    find_convolution_backward_data_algorithm_ex => cudnnFindConvolutionBackwardDataAlgorithmEx(
    handle: cudnnHandle_t, w_desc: cudnnFilterDescriptor_t, w: *const c_void,
    dy_desc: cudnnTensorDescriptor_t, dy: *const c_void, conv: cudnnConvolutionDescriptor_t,
    dx_desc: cudnnTensorDescriptor_t, dx: *mut c_void, requested: c_int, returned: *mut c_int,
    perf: *mut cudnnConvolutionBwdDataAlgoPerf_t, workspace: *mut c_void, workspace_bytes: usize,
); counted);
status_fn!(
    /// Runs and times the backward-filter algorithms; results sorted by time.
    find_convolution_backward_filter_algorithm_ex => cudnnFindConvolutionBackwardFilterAlgorithmEx(
    handle: cudnnHandle_t, x_desc: cudnnTensorDescriptor_t, x: *const c_void,
    dy_desc: cudnnTensorDescriptor_t, dy: *const c_void, conv: cudnnConvolutionDescriptor_t,
    dw_desc: cudnnFilterDescriptor_t, dw: *mut c_void, requested: c_int, returned: *mut c_int,
    perf: *mut cudnnConvolutionBwdFilterAlgoPerf_t, workspace: *mut c_void, workspace_bytes: usize,
); counted);
status_fn!(
    /// y = α·conv(x, w) + β·y.
    convolution_forward => cudnnConvolutionForward(
    handle: cudnnHandle_t, alpha: *const c_void, x_desc: cudnnTensorDescriptor_t,
    x: *const c_void, w_desc: cudnnFilterDescriptor_t, w: *const c_void,
    conv: cudnnConvolutionDescriptor_t, algo: cudnnConvolutionFwdAlgo_t, workspace: *mut c_void,
    workspace_bytes: usize, beta: *const c_void, y_desc: cudnnTensorDescriptor_t, y: *mut c_void,
); counted);
status_fn!(
    /// dx = α·conv_transpose(dy, w) + β·dx.
    convolution_backward_data => cudnnConvolutionBackwardData(
    handle: cudnnHandle_t, alpha: *const c_void, w_desc: cudnnFilterDescriptor_t,
    w: *const c_void, dy_desc: cudnnTensorDescriptor_t, dy: *const c_void,
    conv: cudnnConvolutionDescriptor_t, algo: cudnnConvolutionBwdDataAlgo_t,
    workspace: *mut c_void, workspace_bytes: usize, beta: *const c_void,
    dx_desc: cudnnTensorDescriptor_t, dx: *mut c_void,
); counted);
status_fn!(
    /// dw = α·(x ⋆ dy) + β·dw.
    convolution_backward_filter => cudnnConvolutionBackwardFilter(
    handle: cudnnHandle_t, alpha: *const c_void, x_desc: cudnnTensorDescriptor_t,
    x: *const c_void, dy_desc: cudnnTensorDescriptor_t, dy: *const c_void,
    conv: cudnnConvolutionDescriptor_t, algo: cudnnConvolutionBwdFilterAlgo_t,
    workspace: *mut c_void, workspace_bytes: usize, beta: *const c_void,
    dw_desc: cudnnFilterDescriptor_t, dw: *mut c_void,
); counted);
