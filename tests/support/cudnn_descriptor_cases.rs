//! One table of cuDNN descriptor cases with the outcome the real cuDNN 9.19 gives each (read
//! off the library of the `nvidia-cudnn-cu13==9.19.0.56` wheel, which needs no GPU for these
//! calls). tests/real_cuda_libraries.rs runs the table against that library, so the table
//! stays true; tests/emu_libraries.rs runs it against the emulated cuDNN, so the emulation
//! keeps to it. Every call goes through `simclr::cuda::driver::cudnn`, which sends it to
//! whichever library this process uses.

use simclr::cuda::driver::cudnn::*;
use std::ffi::c_int;

use cudnnDataType_t::{CUDNN_DATA_BFLOAT16 as BF16, CUDNN_DATA_FLOAT as F32};
use cudnnStatus_t::{CUDNN_STATUS_BAD_PARAM as BAD, CUDNN_STATUS_NOT_SUPPORTED as NOT_SUPPORTED};
use cudnnTensorFormat_t::{CUDNN_TENSOR_NCHW as NCHW, CUDNN_TENSOR_NHWC as NHWC};

/// A case's outcome: success (with the output dims, for cudnnGetConvolution2dForwardOutputDim)
/// or the status of the refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Dims([c_int; 4]),
    Refused(cudnnStatus_t),
}

/// What one case's calls returned: nothing, or the output dims.
type Answer = Result<Option<[c_int; 4]>>;

fn outcome(r: Answer) -> Outcome {
    match r {
        Ok(None) => Outcome::Ok,
        Ok(Some(d)) => Outcome::Dims(d),
        Err(e) => Outcome::Refused(e.status),
    }
}

fn tensor(dims: [c_int; 4], dt: cudnnDataType_t) -> Answer {
    let d = create_tensor_descriptor()?;
    let [n, c, h, w] = dims;
    let r = unsafe { set_tensor_4d_descriptor(d, NHWC, dt, n, c, h, w) };
    unsafe { destroy_tensor_descriptor(d) }?;
    r.map(|()| None)
}

fn filter(dims: [c_int; 4]) -> Answer {
    let d = create_filter_descriptor()?;
    let [k, c, h, w] = dims;
    let r = unsafe { set_filter_4d_descriptor(d, BF16, NHWC, k, c, h, w) };
    unsafe { destroy_filter_descriptor(d) }?;
    r.map(|()| None)
}

/// A convolution's settings: pad, stride, dilation (h, w each), compute type, groups.
#[derive(Clone, Copy)]
struct Conv {
    pad: [c_int; 2],
    stride: [c_int; 2],
    dilation: [c_int; 2],
    compute: cudnnDataType_t,
    groups: c_int,
}

const CONV: Conv = Conv {
    pad: [1, 1],
    stride: [1, 1],
    dilation: [1, 1],
    compute: F32,
    groups: 1,
};

impl Conv {
    const fn pad(self, h: c_int, w: c_int) -> Self {
        Conv {
            pad: [h, w],
            ..self
        }
    }
    const fn stride(self, u: c_int, v: c_int) -> Self {
        Conv {
            stride: [u, v],
            ..self
        }
    }
    const fn dilation(self, h: c_int, w: c_int) -> Self {
        Conv {
            dilation: [h, w],
            ..self
        }
    }
    const fn compute(self, compute: cudnnDataType_t) -> Self {
        Conv { compute, ..self }
    }
    const fn groups(self, groups: c_int) -> Self {
        Conv { groups, ..self }
    }
}

fn set_conv(d: cudnnConvolutionDescriptor_t, c: Conv) -> Result<()> {
    let mode = cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION;
    let ([ph, pw], [u, v], [dh, dw]) = (c.pad, c.stride, c.dilation);
    unsafe {
        set_convolution_2d_descriptor(d, ph, pw, u, v, dh, dw, mode, c.compute)?;
        set_convolution_group_count(d, c.groups)
    }
}

fn conv(c: Conv) -> Answer {
    let d = create_convolution_descriptor()?;
    let r = set_conv(d, c);
    unsafe { destroy_convolution_descriptor(d) }?;
    r.map(|()| None)
}

/// One input of cudnnGetConvolution2dForwardOutputDim: its dims, data type and format, or
/// None for a descriptor created and never set.
type Desc = Option<([c_int; 4], cudnnDataType_t, cudnnTensorFormat_t)>;

const fn t(dims: [c_int; 4]) -> Desc {
    Some((dims, BF16, NHWC))
}

/// cudnnGetConvolution2dForwardOutputDim of input `x`, filter `w` and convolution `c` (None:
/// never set).
fn output_dims(x: Desc, w: Desc, c: Option<Conv>) -> Answer {
    let (xd, wd, cd) = (
        create_tensor_descriptor()?,
        create_filter_descriptor()?,
        create_convolution_descriptor()?,
    );
    let run = || -> Result<[c_int; 4]> {
        if let Some(([n, c, h, w], dt, f)) = x {
            unsafe { set_tensor_4d_descriptor(xd, f, dt, n, c, h, w) }?;
        }
        if let Some(([k, c, h, w], dt, f)) = w {
            unsafe { set_filter_4d_descriptor(wd, dt, f, k, c, h, w) }?;
        }
        if let Some(c) = c {
            set_conv(cd, c)?;
        }
        let mut o: [c_int; 4] = [0; 4];
        let [n, c, h, w] = o.each_mut().map(|v| v as *mut c_int);
        unsafe { get_convolution_2d_forward_output_dim(cd, xd, wd, n, c, h, w) }?;
        Ok(o)
    };
    let r = run();
    unsafe {
        destroy_tensor_descriptor(xd)?;
        destroy_filter_descriptor(wd)?;
        destroy_convolution_descriptor(cd)?;
    }
    r.map(Some)
}

/// `name: calls => outcome;` rows into (name, outcome here, cuDNN 9.19's outcome), one line each.
macro_rules! table {
    ($($name:literal: $got:expr => $want:expr;)*) => {
        vec![$(($name, outcome($got), $want)),*]
    };
}

/// Every case: its name, its outcome here, and the outcome cuDNN 9.19 gives.
pub fn run() -> Vec<(&'static str, Outcome, Outcome)> {
    use cudnnDataType_t::{CUDNN_DATA_HALF as HALF, CUDNN_DATA_INT8 as INT8};
    use Outcome::{Dims, Ok as Accepted, Refused};
    const BIG: c_int = 1 << 30;
    let (x, w) = (t([8, 16, 32, 32]), t([24, 16, 3, 3]));
    let (down, dilated) = (CONV.stride(2, 2), CONV.pad(0, 0).dilation(2, 2));
    let uneven = CONV.pad(1, 0).stride(2, 3).dilation(2, 1);
    let (x_f32, w_kcrs) = (
        Some(([8, 16, 32, 32], F32, NHWC)),
        Some(([24, 16, 3, 3], BF16, NCHW)),
    );
    table![
        "tensor of 2^31 - 1 elements": tensor([1, 1, 1, i32::MAX], BF16) => Accepted;
        "tensor of 2^31 elements": tensor([2, 1, 1, BIG], BF16) => Refused(NOT_SUPPORTED);
        "tensor with n = 0": tensor([0, 1, 1, 1], F32) => Refused(BAD);
        "tensor with c = -1": tensor([1, -1, 1, 1], F32) => Refused(BAD);
        "tensor with h = 0": tensor([1, 1, 0, 1], BF16) => Refused(BAD);
        "filter of 2^31 elements": filter([1 << 16, 1 << 15, 1, 1]) => Accepted;
        "filter over 2^31 elements": filter([1 << 16, (1 << 15) + 1, 1, 1]) => Accepted;
        "filter with k = 0": filter([0, 1, 1, 1]) => Refused(BAD);
        "filter with h = -1": filter([1, 1, -1, 1]) => Refused(BAD);
        "convolution with pad_h = -1": conv(CONV.pad(-1, 1)) => Refused(BAD);
        "convolution with u = 0": conv(CONV.stride(0, 1)) => Refused(BAD);
        "convolution with v = -1": conv(CONV.stride(1, -1)) => Refused(BAD);
        "convolution with dilation_h = 0": conv(CONV.dilation(0, 1)) => Refused(BAD);
        "BFLOAT16 compute": conv(CONV.compute(BF16)) => Refused(BAD);
        "HALF compute": conv(CONV.compute(HALF)) => Accepted;
        "INT8 compute": conv(CONV.compute(INT8)) => Refused(BAD);
        "group count 0": conv(CONV.groups(0)) => Refused(BAD);
        "group count -2": conv(CONV.groups(-2)) => Refused(BAD);
        "group count 3": conv(CONV.groups(3)) => Accepted;
        "output of a strided 3x3": output_dims(x, w, Some(down)) => Dims([8, 24, 16, 16]);
        "output with pad, stride and dilation differing by axis":
            output_dims(t([2, 4, 7, 9]), t([6, 4, 3, 2]), Some(uneven)) => Dims([2, 6, 3, 3]);
        "output of a dilated filter exactly as large as the input":
            output_dims(t([1, 3, 5, 5]), t([2, 3, 3, 3]), Some(dilated)) => Dims([1, 2, 1, 1]);
        "output of a dilated filter one row larger than the input":
            output_dims(t([1, 3, 5, 5]), t([2, 3, 4, 3]), Some(dilated)) => Refused(BAD);
        "output of a filter taller than the padded input":
            output_dims(x, t([24, 16, 40, 3]), Some(down)) => Refused(BAD);
        "output with the filter's c not the input's channels":
            output_dims(x, t([24, 8, 3, 3]), Some(down)) => Refused(BAD);
        "output of 2 groups":
            output_dims(x, t([24, 8, 3, 3]), Some(CONV.groups(2))) => Dims([8, 24, 32, 32]);
        "output of 2 groups with k = 25 (not a multiple: not this call's business)":
            output_dims(x, t([25, 8, 3, 3]), Some(CONV.groups(2))) => Dims([8, 25, 32, 32]);
        "output with input and filter of different data types":
            output_dims(x_f32, w, Some(down)) => Dims([8, 24, 16, 16]);
        "output with an NHWC input and a KCRS filter":
            output_dims(x, w_kcrs, Some(down)) => Dims([8, 24, 16, 16]);
        "output with an unset convolution": output_dims(x, w, None) => Refused(BAD);
        "output with an unset input": output_dims(None, w, Some(down)) => Refused(BAD);
        "output with an unset filter": output_dims(x, None, Some(down)) => Refused(BAD);
        "output of a filter of 2^31 elements":
            output_dims(t([1, 1 << 15, 1, 1]), t([1 << 16, 1 << 15, 1, 1]), Some(CONV.pad(0, 0)))
            => Dims([1, 1 << 16, 1, 1]);
    ]
}

/// Runs the table; panics listing every case whose outcome is not cuDNN 9.19's.
pub fn check_all() {
    let results = run();
    let wrong: Vec<String> = results
        .iter()
        .filter(|(_, got, want)| got != want)
        .map(|(name, got, want)| format!("  {name}: {got:?}, cuDNN 9.19 gives {want:?}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} descriptor cases differ from cuDNN 9.19:\n{}",
        wrong.len(),
        results.len(),
        wrong.join("\n")
    );
    println!(
        "{} descriptor cases as cuDNN 9.19 gives them",
        results.len()
    );
}
