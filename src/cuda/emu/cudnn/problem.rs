//! The checks every emulated convolution call (the three directions and their Find) makes on
//! its descriptors, as cuDNN documents them for cudnnConvolutionForward / BackwardData /
//! BackwardFilter:
//!
//! - the handle and the four descriptors are live and set (`BAD_PARAM`);
//! - x, w and y have the same data type (`BAD_PARAM`), and (data, compute) is one of cuDNN's
//!   supported configurations: FLOAT/FLOAT, DOUBLE/DOUBLE, HALF/FLOAT (pseudo-half),
//!   BFLOAT16/FLOAT (pseudo-bfloat16); anything else `NOT_SUPPORTED` (TRUE_HALF and the INT8
//!   configurations exist in cuDNN but are not emulated: also `NOT_SUPPORTED`, said so);
//! - x, y and the filter share one format (NHWC tensors with a KRSC filter); a KCRS filter with
//!   NHWC tensors is `NOT_SUPPORTED`; the emulation computes NHWC only;
//! - cross-correlation mode (what the callers use; true convolution is not emulated);
//! - x channels = filter c × groups, filter k divisible by groups (`BAD_PARAM`);
//! - the dilated filter fits the padded input (`BAD_PARAM`);
//! - y batch = x batch and y channels = filter k (`BAD_PARAM`); y spatial dims equal
//!   cudnnGetConvolution2dForwardOutputDim's `1 + (in + 2·pad − ((f − 1)·dil + 1)) / stride`
//!   (`NOT_SUPPORTED`, as documented).

use super::direct::Geometry;
use super::objects::{self, bad, unsupported, with, ConvDesc, Dims4};
use crate::cuda::driver::cudnn::{
    cudnnConvolutionDescriptor_t, cudnnConvolutionMode_t, cudnnDataType_t, cudnnFilterDescriptor_t,
    cudnnHandle_t, cudnnMathType_t, cudnnTensorDescriptor_t, cudnnTensorFormat_t, Result,
};
use crate::cuda::emu::elems::Elem;

/// A checked convolution: its geometry, element type, and whether it computes in f64.
#[derive(Clone, Copy, Debug)]
pub struct Problem {
    pub g: Geometry,
    pub elem: Elem,
    pub math: cudnnMathType_t,
}

fn tensor(d: cudnnTensorDescriptor_t, name: &str) -> Result<Dims4> {
    with(&objects::TENSORS, d as usize, name, |t| t.0)?
        .ok_or_else(|| bad(format!("{name} was never set (cudnnSetTensor4dDescriptor)")))
}

fn filter(d: cudnnFilterDescriptor_t, name: &str) -> Result<Dims4> {
    with(&objects::FILTERS, d as usize, name, |t| t.0)?
        .ok_or_else(|| bad(format!("{name} was never set (cudnnSetFilter4dDescriptor)")))
}

fn conv(d: cudnnConvolutionDescriptor_t) -> Result<ConvDesc> {
    let c = with(&objects::CONVS, d as usize, "convDesc", |c| *c)?;
    if !c.set {
        return Err(bad(
            "convDesc was never set (cudnnSetConvolution2dDescriptor)",
        ));
    }
    Ok(c)
}

/// cudnnGetConvolution2dForwardOutputDim's rule, as cuDNN 9.19 applies it (checked against
/// the real library by tests/real_cuda_libraries.rs): x's channels are the filter's
/// c × groups and the dilated filter fits the padded input (else `BAD_PARAM`); data types,
/// formats and k's divisibility by the groups are not its business (the convolution calls
/// check them). (n, k, ho, wo).
fn output_dims(xd: &Dims4, wd: &Dims4, cd: &ConvDesc, xn: &str, wn: &str) -> Result<[usize; 4]> {
    let [n, cin, h, wi] = xd.dims;
    let [k, cg, r, s] = wd.dims;
    let groups = cd.groups as usize;
    if cin != cg * groups {
        return Err(bad(format!(
            "{xn} has {cin} channels; {wn} has c = {cg} per group × {groups} groups = {}",
            cg * groups
        )));
    }
    let [ph, pw] = cd.pad.map(|v| v as usize);
    let [sh, sw] = cd.stride.map(|v| v as usize);
    let [dh, dw] = cd.dilation.map(|v| v as usize);
    let (eh, ew) = ((r - 1) * dh + 1, (s - 1) * dw + 1);
    if eh > h + 2 * ph || ew > wi + 2 * pw {
        return Err(bad(format!(
            "the dilated {wn} ({eh}x{ew}) is larger than the padded {xn} ({}x{})",
            h + 2 * ph,
            wi + 2 * pw
        )));
    }
    Ok([
        n,
        k,
        1 + (h + 2 * ph - eh) / sh,
        1 + (wi + 2 * pw - ew) / sw,
    ])
}

/// The emulated cudnnGetConvolution2dForwardOutputDim: (n, c, h, w) of the output.
pub fn forward_output_dims(
    c: cudnnConvolutionDescriptor_t,
    x: cudnnTensorDescriptor_t,
    w: cudnnFilterDescriptor_t,
) -> Result<[usize; 4]> {
    let (xd, wd, cd) = (
        tensor(x, "inputTensorDesc")?,
        filter(w, "filterDesc")?,
        conv(c)?,
    );
    output_dims(&xd, &wd, &cd, "inputTensorDesc", "filterDesc")
}

pub fn handle(h: cudnnHandle_t) -> Result<()> {
    with(&objects::HANDLES, h as usize, "handle", |_| ())
}

/// Checks the descriptors of a convolution with input `x`, filter `w` and output `y` (the
/// names are the caller's: dx/dy in the backward directions).
pub fn check(
    h: cudnnHandle_t,
    x: (cudnnTensorDescriptor_t, &str),
    w: (cudnnFilterDescriptor_t, &str),
    c: cudnnConvolutionDescriptor_t,
    y: (cudnnTensorDescriptor_t, &str),
) -> Result<Problem> {
    handle(h)?;
    let (xd, wd, cd, yd) = (
        tensor(x.0, x.1)?,
        filter(w.0, w.1)?,
        conv(c)?,
        tensor(y.0, y.1)?,
    );
    let (xn, wn, yn) = (x.1, w.1, y.1);
    if xd.dtype != wd.dtype || xd.dtype != yd.dtype {
        return Err(bad(format!(
            "{xn}, {wn} and {yn} must have one data type; found {:?}, {:?} and {:?}",
            xd.dtype, wd.dtype, yd.dtype
        )));
    }
    use cudnnDataType_t::*;
    let elem = match (xd.dtype, cd.compute) {
        (CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT)
        | (CUDNN_DATA_DOUBLE, CUDNN_DATA_DOUBLE)
        | (CUDNN_DATA_HALF, CUDNN_DATA_FLOAT)
        | (CUDNN_DATA_BFLOAT16, CUDNN_DATA_FLOAT) => objects::elem_of(xd.dtype, xn)?,
        (CUDNN_DATA_HALF, CUDNN_DATA_HALF) => {
            return Err(unsupported(
                "TRUE_HALF_CONFIG (HALF data, HALF compute) is a cuDNN configuration the \
                 emulation does not compute; use FLOAT compute (PSEUDO_HALF_CONFIG)",
            ))
        }
        (d, cmp) => {
            return Err(unsupported(format!(
                "data type {d:?} with compute type {cmp:?} is not a supported configuration \
                 (FLOAT/FLOAT, DOUBLE/DOUBLE, HALF/FLOAT, BFLOAT16/FLOAT, HALF/HALF)"
            )))
        }
    };
    let nhwc = cudnnTensorFormat_t::CUDNN_TENSOR_NHWC;
    if xd.format != yd.format || xd.format != wd.format {
        return Err(unsupported(format!(
            "formats differ: {xn} {:?}, {wn} {:?} (NHWC = KRSC, NCHW = KCRS), {yn} {:?}",
            xd.format, wd.format, yd.format
        )));
    }
    if xd.format != nhwc {
        return Err(unsupported(format!(
            "format {:?}: the emulation computes NHWC tensors with KRSC filters only",
            xd.format
        )));
    }
    if cd.mode != cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION {
        return Err(unsupported(
            "CUDNN_CONVOLUTION mode (flipped filter) is not emulated; use CUDNN_CROSS_CORRELATION",
        ));
    }
    let [k, cg, r, s] = wd.dims;
    let elements = wd.dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if elements.is_none_or(|e| e > i32::MAX as usize) {
        // cuDNN 9.19's setter takes such a filter; what its convolutions do with one is not
        // known without a GPU, so the emulation refuses rather than guess.
        return Err(unsupported(format!(
            "{wn} holds {k}x{cg}x{r}x{s} elements, more than 2^31 - 1: not emulated"
        )));
    }
    let groups = cd.groups as usize;
    if k % groups != 0 {
        return Err(bad(format!(
            "{wn} has k = {k} output channels, not a multiple of the group count {groups}"
        )));
    }
    let [n, cin, h, wi] = xd.dims;
    let [_, _, ho, wo] = output_dims(&xd, &wd, &cd, xn, wn)?;
    let [ph, pw] = cd.pad.map(|v| v as usize);
    let [sh, sw] = cd.stride.map(|v| v as usize);
    let [dh, dw] = cd.dilation.map(|v| v as usize);
    let [yn_, yc, yh, yw] = yd.dims;
    if yn_ != n || yc != k {
        return Err(bad(format!(
            "{yn} is n = {yn_}, c = {yc}; the convolution gives n = {n}, c = {k}"
        )));
    }
    if (yh, yw) != (ho, wo) {
        return Err(unsupported(format!(
            "{yn} is {yh}x{yw}; cudnnGetConvolution2dForwardOutputDim gives {ho}x{wo} \
             (1 + (in + 2·pad − ((f − 1)·dilation + 1)) / stride)"
        )));
    }
    let g = Geometry {
        n,
        h,
        w: wi,
        cin,
        cout: k,
        kh: r,
        kw: s,
        ho,
        wo,
        sh,
        sw,
        ph,
        pw,
        dh,
        dw,
        groups,
        cin_g: cg,
        cout_g: k / groups,
    };
    Ok(Problem {
        g,
        elem,
        math: cd.math,
    })
}
