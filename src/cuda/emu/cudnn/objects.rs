//! cuDNN handles and descriptors of the emulated library, and the documented rules of their
//! setters (cuDNN 9 legacy API):
//!
//! - `cudnnSetTensor4dDescriptor`: n, c, h, w > 0 (else `BAD_PARAM`); format NCHW or NHWC
//!   (NCHW_VECT_C, and the vectorised INT8x4/INT8x32/UINT8x4 types that need it, are
//!   `NOT_SUPPORTED` here); a data type cuDNN knows for tensors; at most 2^31 − 1 elements in
//!   all (`NOT_SUPPORTED`, the documented 2 Giga-element limit).
//! - `cudnnSetFilter4dDescriptor`: the same rules for k, c, h, w but no element limit (cuDNN
//!   9.19 accepts a filter of 2^31 elements and more); format NHWC means KRSC layout.
//! - `cudnnSetConvolution2dDescriptor`: pad ≥ 0, stride > 0, dilation > 0 (`BAD_PARAM`); compute
//!   type FLOAT, DOUBLE or HALF (others `BAD_PARAM`); mode convolution or cross-correlation.
//! - `cudnnSetConvolutionGroupCount`: groups ≥ 1 (`BAD_PARAM`).
//! - Every call on an unknown or destroyed handle or descriptor: `BAD_PARAM`, naming it.
//!
//! A descriptor holds `None` until set; using an unset descriptor is `BAD_PARAM` (cuDNN calls it
//! "not initialised").
//!
//! These rules and the output-dims rule (`problem`) are pinned to the real cuDNN 9.19 by one
//! table of cases (tests/support/cudnn_descriptor_cases.rs), run here by
//! tests/emu_libraries.rs and against the real library, without a GPU, by
//! tests/real_cuda_libraries.rs.

use super::super::registry::Registry;
use crate::cuda::driver::cudnn::{
    cudnnConvolutionMode_t, cudnnDataType_t, cudnnMathType_t, cudnnStatus_t, cudnnTensorFormat_t,
    DnnError, Result,
};
use std::ffi::c_int;

pub fn bad(detail: impl Into<String>) -> DnnError {
    DnnError::new(cudnnStatus_t::CUDNN_STATUS_BAD_PARAM, detail)
}
pub fn unsupported(detail: impl Into<String>) -> DnnError {
    DnnError::new(cudnnStatus_t::CUDNN_STATUS_NOT_SUPPORTED, detail)
}
fn internal(e: String) -> DnnError {
    DnnError::new(cudnnStatus_t::CUDNN_STATUS_INTERNAL_ERROR, e)
}

/// A cuDNN handle: the stream is recorded (emulated streams are synchronous).
pub struct Handle {
    pub stream: usize,
}

/// A set 4-d tensor or filter descriptor: dims in cuDNN's logical order (n, c, h, w) or
/// (k, c, r, s), and the memory format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims4 {
    pub dtype: cudnnDataType_t,
    pub format: cudnnTensorFormat_t,
    pub dims: [usize; 4],
}

#[derive(Clone, Copy, Debug)]
pub struct ConvDesc {
    pub pad: [i32; 2],
    pub stride: [i32; 2],
    pub dilation: [i32; 2],
    pub mode: cudnnConvolutionMode_t,
    pub compute: cudnnDataType_t,
    /// Set by `cudnnSetConvolution2dDescriptor`.
    pub set: bool,
    pub groups: i32,
    pub math: cudnnMathType_t,
}

pub struct TensorDesc(pub Option<Dims4>);
pub struct FilterDesc(pub Option<Dims4>);

pub static HANDLES: Registry<Handle> = Registry::new();
pub static TENSORS: Registry<TensorDesc> = Registry::new();
pub static FILTERS: Registry<FilterDesc> = Registry::new();
pub static CONVS: Registry<ConvDesc> = Registry::new();

pub fn create<T>(reg: &Registry<T>, value: T) -> Result<usize> {
    reg.insert(value).map_err(internal)
}

pub fn destroy<T>(reg: &Registry<T>, addr: usize, what: &str) -> Result<()> {
    if reg.remove(addr).map_err(internal)? {
        Ok(())
    } else {
        Err(bad(format!(
            "{what} {addr:#x} is not a live descriptor (never created, or destroyed)"
        )))
    }
}

/// Runs `f` on the live object `addr`, or `BAD_PARAM` naming `what`.
pub fn with<T, R>(
    reg: &Registry<T>,
    addr: usize,
    what: &str,
    f: impl FnOnce(&mut T) -> R,
) -> Result<R> {
    reg.with(addr, f).map_err(internal)?.ok_or_else(|| {
        bad(format!(
            "{what} {addr:#x} is not live (null, never created, or destroyed)"
        ))
    })
}

/// Bytes of one element of a data type the emulation computes with, or `NOT_SUPPORTED`.
pub fn elem_of(dtype: cudnnDataType_t, what: &str) -> Result<super::super::elems::Elem> {
    use super::super::elems::Elem;
    match dtype {
        cudnnDataType_t::CUDNN_DATA_FLOAT => Ok(Elem::F32),
        cudnnDataType_t::CUDNN_DATA_DOUBLE => Ok(Elem::F64),
        cudnnDataType_t::CUDNN_DATA_HALF => Ok(Elem::F16),
        cudnnDataType_t::CUDNN_DATA_BFLOAT16 => Ok(Elem::Bf16),
        d => Err(unsupported(format!(
            "{what} has data type {d:?}; the emulated convolutions compute FLOAT, DOUBLE, HALF \
             and BFLOAT16 data only"
        ))),
    }
}

/// The checks shared by the tensor and filter setters.
fn dims4(
    what: &str,
    names: [&str; 4],
    limited: bool,
    dtype: cudnnDataType_t,
    format: cudnnTensorFormat_t,
    d: [c_int; 4],
) -> Result<Dims4> {
    for (name, v) in names.iter().zip(d) {
        if v <= 0 {
            return Err(bad(format!(
                "{what}: {name} = {v}; every dimension must be > 0"
            )));
        }
    }
    use cudnnDataType_t::*;
    match format {
        cudnnTensorFormat_t::CUDNN_TENSOR_NCHW | cudnnTensorFormat_t::CUDNN_TENSOR_NHWC => {}
        f => {
            return Err(unsupported(format!(
                "{what}: format {f:?} is not emulated (NCHW or NHWC)"
            )))
        }
    }
    match dtype {
        CUDNN_DATA_FLOAT | CUDNN_DATA_DOUBLE | CUDNN_DATA_HALF | CUDNN_DATA_BFLOAT16
        | CUDNN_DATA_INT8 | CUDNN_DATA_UINT8 | CUDNN_DATA_INT32 | CUDNN_DATA_INT64 => {}
        t => {
            return Err(bad(format!(
                "{what}: data type {t:?} is not a 4-d tensor type in format {format:?} \
                 (FLOAT, DOUBLE, HALF, BFLOAT16, INT8, UINT8, INT32, INT64)"
            )))
        }
    }
    let total = d.iter().try_fold(1i64, |acc, &v| acc.checked_mul(v as i64));
    match total {
        _ if !limited => {}
        Some(t) if t <= i32::MAX as i64 => {}
        _ => {
            return Err(unsupported(format!(
                "{what}: {}x{}x{}x{} elements exceed cuDNN's limit of 2^31 - 1",
                d[0], d[1], d[2], d[3]
            )))
        }
    }
    Ok(Dims4 {
        dtype,
        format,
        dims: d.map(|v| v as usize),
    })
}

pub fn set_tensor(
    addr: usize,
    format: cudnnTensorFormat_t,
    dtype: cudnnDataType_t,
    d: [c_int; 4],
) -> Result<()> {
    let what = "cudnnSetTensor4dDescriptor";
    // The descriptor is looked up first: a dead descriptor is the first thing cuDNN rejects.
    with(&TENSORS, addr, "tensor descriptor", |_| ())?;
    let v = dims4(what, ["n", "c", "h", "w"], true, dtype, format, d)?;
    with(&TENSORS, addr, "tensor descriptor", |t| t.0 = Some(v))
}

pub fn set_filter(
    addr: usize,
    dtype: cudnnDataType_t,
    format: cudnnTensorFormat_t,
    d: [c_int; 4],
) -> Result<()> {
    let what = "cudnnSetFilter4dDescriptor";
    with(&FILTERS, addr, "filter descriptor", |_| ())?;
    let v = dims4(what, ["k", "c", "h (r)", "w (s)"], false, dtype, format, d)?;
    with(&FILTERS, addr, "filter descriptor", |f| f.0 = Some(v))
}

pub fn new_conv() -> ConvDesc {
    ConvDesc {
        pad: [0; 2],
        stride: [1; 2],
        dilation: [1; 2],
        mode: cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
        compute: cudnnDataType_t::CUDNN_DATA_FLOAT,
        set: false,
        groups: 1,
        math: cudnnMathType_t::CUDNN_DEFAULT_MATH,
    }
}

pub fn set_conv(
    addr: usize,
    pad: [c_int; 2],
    stride: [c_int; 2],
    dilation: [c_int; 2],
    mode: cudnnConvolutionMode_t,
    compute: cudnnDataType_t,
) -> Result<()> {
    let what = "cudnnSetConvolution2dDescriptor";
    with(&CONVS, addr, "convolution descriptor", |_| ())?;
    let checks = [
        ("pad_h", pad[0], 0),
        ("pad_w", pad[1], 0),
        ("u (vertical stride)", stride[0], 1),
        ("v (horizontal stride)", stride[1], 1),
        ("dilation_h", dilation[0], 1),
        ("dilation_w", dilation[1], 1),
    ];
    for (name, v, min) in checks {
        if v < min {
            return Err(bad(format!("{what}: {name} = {v}; must be >= {min}")));
        }
    }
    use cudnnDataType_t::*;
    if !matches!(
        compute,
        CUDNN_DATA_FLOAT | CUDNN_DATA_DOUBLE | CUDNN_DATA_HALF
    ) {
        return Err(bad(format!(
            "{what}: compute type {compute:?}; allowed FLOAT, DOUBLE or HALF (BFLOAT16 data \
             computes in FLOAT)"
        )));
    }
    with(&CONVS, addr, "convolution descriptor", |c| {
        c.pad = pad;
        c.stride = stride;
        c.dilation = dilation;
        c.mode = mode;
        c.compute = compute;
        c.set = true;
    })
}

pub fn set_groups(addr: usize, groups: c_int) -> Result<()> {
    with(&CONVS, addr, "convolution descriptor", |_| ())?;
    if groups < 1 {
        return Err(bad(format!(
            "cudnnSetConvolutionGroupCount: groupCount = {groups}; must be >= 1"
        )));
    }
    with(&CONVS, addr, "convolution descriptor", |c| {
        c.groups = groups
    })
}

pub fn set_math(addr: usize, math: cudnnMathType_t) -> Result<()> {
    with(&CONVS, addr, "convolution descriptor", |c| c.math = math)
}
