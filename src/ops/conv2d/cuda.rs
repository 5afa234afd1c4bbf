//! Convolutions through cuDNN: NHWC activations, KRSC filters (cuDNN's NHWC filter format),
//! f32 or bf16 data with fp32 accumulation, any stride, padding, dilation and groups.
//! Each (direction, dtype, geometry) gets its algorithm from cuDNN's measured search
//! (cudnnFind*AlgorithmEx) on first use, chosen and kept on disk by src/cuda/conv_algo.rs
//! (deterministic, direct-sum algorithms for f32), cached in the device's cuDNN state
//! (src/cuda/dnn.rs); workspaces come from the pool allocator.

use super::Conv2dKernels;
use super::Geometry;
use crate::cuda::alloc::DeviceBuffer;
use crate::cuda::dnn::{find_workspace, with_dnn, Key};
use crate::cuda::driver::cudnn::{self as dnn, *};
use crate::cuda::error::{cuda_err, CudaCall};
use crate::cuda::storage::{empty, gpu_of, storage};
use crate::ops::backend::Cuda;
use crate::{DType, Result, Tensor};
use std::ffi::c_void;

fn key(dt: DType, g: &Geometry) -> Key {
    let s = [
        g.n, g.h, g.w, g.cin, g.cout, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups,
        g.ho, g.wo,
    ];
    (dt, s)
}

/// The descriptors of one convolution, destroyed on drop.
struct Descs {
    x: cudnnTensorDescriptor_t,
    y: cudnnTensorDescriptor_t,
    w: cudnnFilterDescriptor_t,
    conv: cudnnConvolutionDescriptor_t,
}

impl Descs {
    fn new(g: &Geometry, dt: DType) -> Result<Self> {
        let ty = match dt {
            DType::F32 => cudnnDataType_t::CUDNN_DATA_FLOAT,
            DType::BF16 => cudnnDataType_t::CUDNN_DATA_BFLOAT16,
            d => {
                return Err(crate::Error::dtype(
                    "conv2d",
                    format!("cuDNN path takes f32 or bf16, not {}", d.name()),
                ))
            }
        };
        // f32 stays f32 (FMA math: no TF32); bf16 uses tensor cores.
        let math = if dt == DType::F32 {
            cudnnMathType_t::CUDNN_FMA_MATH
        } else {
            cudnnMathType_t::CUDNN_TENSOR_OP_MATH
        };
        if let Some(why) = super::cuda_limits::too_large(g) {
            return Err(crate::Error::shape("conv2d", why));
        }
        let d = Descs {
            x: dnn::create_tensor_descriptor().call("cudnnCreateTensorDescriptor")?,
            y: dnn::create_tensor_descriptor().call("cudnnCreateTensorDescriptor")?,
            w: dnn::create_filter_descriptor().call("cudnnCreateFilterDescriptor")?,
            conv: dnn::create_convolution_descriptor().call("cudnnCreateConvolutionDescriptor")?,
        };
        let i = |v: usize| {
            i32::try_from(v).map_err(|_| cuda_err(format!("conv2d size {v} exceeds i32")))
        };
        let nhwc = cudnnTensorFormat_t::CUDNN_TENSOR_NHWC;
        unsafe {
            dnn::set_tensor_4d_descriptor(d.x, nhwc, ty, i(g.n)?, i(g.cin)?, i(g.h)?, i(g.w)?)
                .call("dnn::set_tensor_4d_descriptor(x)")?;
            dnn::set_tensor_4d_descriptor(d.y, nhwc, ty, i(g.n)?, i(g.cout)?, i(g.ho)?, i(g.wo)?)
                .call("dnn::set_tensor_4d_descriptor(y)")?;
            dnn::set_filter_4d_descriptor(
                d.w,
                ty,
                nhwc,
                i(g.cout)?,
                i(g.cin_g)?,
                i(g.kh)?,
                i(g.kw)?,
            )
            .call("cudnnSetFilter4dDescriptor")?;
            dnn::set_convolution_2d_descriptor(
                d.conv,
                i(g.ph)?,
                i(g.pw)?,
                i(g.sh)?,
                i(g.sw)?,
                i(g.dh)?,
                i(g.dw)?,
                cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
                cudnnDataType_t::CUDNN_DATA_FLOAT,
            )
            .call("cudnnSetConvolution2dDescriptor")?;
            dnn::set_convolution_group_count(d.conv, i(g.groups)?)
                .call("cudnnSetConvolutionGroupCount")?;
            dnn::set_convolution_math_type(d.conv, math).call("cudnnSetConvolutionMathType")?;
        }
        Ok(d)
    }
}

impl Drop for Descs {
    fn drop(&mut self) {
        unsafe {
            let _ = dnn::destroy_tensor_descriptor(self.x);
            let _ = dnn::destroy_tensor_descriptor(self.y);
            let _ = dnn::destroy_filter_descriptor(self.w);
            let _ = dnn::destroy_convolution_descriptor(self.conv);
        }
    }
}

const ALPHA: f32 = 1.0;
const BETA: f32 = 0.0;

fn cp(t: &Tensor) -> Result<*const c_void> {
    Ok(storage(t, "conv2d")?.ptr() as *const c_void)
}
fn mp(t: &Tensor) -> Result<*mut c_void> {
    Ok(storage(t, "conv2d")?.ptr() as *mut c_void)
}
fn one() -> *const c_void {
    &ALPHA as *const f32 as *const c_void
}
fn zero() -> *const c_void {
    &BETA as *const f32 as *const c_void
}

impl Conv2dKernels for Cuda {
    /// y [n, ho, wo, cout] = conv(x, w).
    fn conv2d_forward(x: &Tensor, w: &Tensor, g: &Geometry) -> Result<Tensor> {
        let gpu = gpu_of(x, "conv2d")?;
        let y = empty(&gpu, &[g.n, g.ho, g.wo, g.cout], x.dtype())?;
        let d = Descs::new(g, x.dtype())?;
        with_dnn(&gpu, |dnn| unsafe {
            let k = key(x.dtype(), g);
            let (algo, ws) = match dnn.fwd.get(&k) {
                Some(&c) => c,
                None => {
                    let handle = dnn.handle;
                    let c = dnn.disk.choose::<cudnnConvolutionFwdAlgoPerf_t>(
                        x.dtype(),
                        &k.1,
                        || {
                            let (buf, size) = find_workspace(&gpu);
                            let wsp = buf
                                .as_ref()
                                .map_or(std::ptr::null_mut(), |b| b.ptr() as *mut c_void);
                            let mut perf = [std::mem::zeroed::<cudnnConvolutionFwdAlgoPerf_t>(); 8];
                            let mut count = 0;
                            dnn::find_convolution_forward_algorithm_ex(
                                handle,
                                d.x,
                                cp(x)?,
                                d.w,
                                cp(w)?,
                                d.conv,
                                d.y,
                                mp(&y)?,
                                8,
                                &mut count,
                                perf.as_mut_ptr(),
                                wsp,
                                size,
                            )
                            .call("cudnnFindConvolutionForwardAlgorithmEx")?;
                            Ok(perf[..count.clamp(0, 8) as usize].to_vec())
                        },
                    )?;
                    dnn.fwd.insert(k, c);
                    c
                }
            };
            let buf = DeviceBuffer::alloc(&gpu, ws)?;
            dnn::convolution_forward(
                dnn.handle,
                one(),
                d.x,
                cp(x)?,
                d.w,
                cp(w)?,
                d.conv,
                algo,
                buf.ptr() as *mut c_void,
                ws,
                zero(),
                d.y,
                mp(&y)?,
            )
            .call("cudnnConvolutionForward")
        })?;
        Ok(y)
    }

    /// dx [n, h, w, cin] from dy and w.
    fn conv2d_backward_input(dy: &Tensor, w: &Tensor, g: &Geometry) -> Result<Tensor> {
        let gpu = gpu_of(dy, "conv2d_backward_input")?;
        let dx = empty(&gpu, &[g.n, g.h, g.w, g.cin], dy.dtype())?;
        let d = Descs::new(g, dy.dtype())?;
        with_dnn(&gpu, |dnn| unsafe {
            let k = key(dy.dtype(), g);
            let (algo, ws) = match dnn.bwd_data.get(&k) {
                Some(&c) => c,
                None => {
                    let handle = dnn.handle;
                    let c = dnn.disk.choose::<cudnnConvolutionBwdDataAlgoPerf_t>(
                        dy.dtype(),
                        &k.1,
                        || {
                            let (buf, size) = find_workspace(&gpu);
                            let wsp = buf
                                .as_ref()
                                .map_or(std::ptr::null_mut(), |b| b.ptr() as *mut c_void);
                            let mut perf =
                                [std::mem::zeroed::<cudnnConvolutionBwdDataAlgoPerf_t>(); 8];
                            let mut count = 0;
                            dnn::find_convolution_backward_data_algorithm_ex(
                                handle,
                                d.w,
                                cp(w)?,
                                d.y,
                                cp(dy)?,
                                d.conv,
                                d.x,
                                mp(&dx)?,
                                8,
                                &mut count,
                                perf.as_mut_ptr(),
                                wsp,
                                size,
                            )
                            .call("cudnnFindConvolutionBackwardDataAlgorithmEx")?;
                            Ok(perf[..count.clamp(0, 8) as usize].to_vec())
                        },
                    )?;
                    dnn.bwd_data.insert(k, c);
                    c
                }
            };
            let buf = DeviceBuffer::alloc(&gpu, ws)?;
            dnn::convolution_backward_data(
                dnn.handle,
                one(),
                d.w,
                cp(w)?,
                d.y,
                cp(dy)?,
                d.conv,
                algo,
                buf.ptr() as *mut c_void,
                ws,
                zero(),
                d.x,
                mp(&dx)?,
            )
            .call("cudnnConvolutionBackwardData")
        })?;
        Ok(dx)
    }

    /// dw [cout, kh, kw, cin/groups] from x and dy.
    fn conv2d_backward_weight(x: &Tensor, dy: &Tensor, g: &Geometry) -> Result<Tensor> {
        let gpu = gpu_of(x, "conv2d_backward_weight")?;
        let dw = empty(&gpu, &[g.cout, g.kh, g.kw, g.cin_g], x.dtype())?;
        let d = Descs::new(g, x.dtype())?;
        with_dnn(&gpu, |dnn| unsafe {
            let k = key(x.dtype(), g);
            let (algo, ws) = match dnn.bwd_filter.get(&k) {
                Some(&c) => c,
                None => {
                    let handle = dnn.handle;
                    let c = dnn.disk.choose::<cudnnConvolutionBwdFilterAlgoPerf_t>(
                        x.dtype(),
                        &k.1,
                        || {
                            let (buf, size) = find_workspace(&gpu);
                            let wsp = buf
                                .as_ref()
                                .map_or(std::ptr::null_mut(), |b| b.ptr() as *mut c_void);
                            let mut perf =
                                [std::mem::zeroed::<cudnnConvolutionBwdFilterAlgoPerf_t>(); 8];
                            let mut count = 0;
                            dnn::find_convolution_backward_filter_algorithm_ex(
                                handle,
                                d.x,
                                cp(x)?,
                                d.y,
                                cp(dy)?,
                                d.conv,
                                d.w,
                                mp(&dw)?,
                                8,
                                &mut count,
                                perf.as_mut_ptr(),
                                wsp,
                                size,
                            )
                            .call("cudnnFindConvolutionBackwardFilterAlgorithmEx")?;
                            Ok(perf[..count.clamp(0, 8) as usize].to_vec())
                        },
                    )?;
                    dnn.bwd_filter.insert(k, c);
                    c
                }
            };
            let buf = DeviceBuffer::alloc(&gpu, ws)?;
            dnn::convolution_backward_filter(
                dnn.handle,
                one(),
                d.x,
                cp(x)?,
                d.y,
                cp(dy)?,
                d.conv,
                algo,
                buf.ptr() as *mut c_void,
                ws,
                zero(),
                d.w,
                mp(&dw)?,
            )
            .call("cudnnConvolutionBackwardFilter")
        })?;
        Ok(dw)
    }
}
