//! Convolutions through cuDNN: NHWC activations, KRSC filters (cuDNN's NHWC filter format),
//! f32 or bf16 data with fp32 accumulation, any stride, padding, dilation and groups.
//! Each (direction, dtype, `--conv-algorithms` policy, geometry) gets its algorithm from
//! cuDNN's measured search (cudnnFind*AlgorithmEx) on first use, chosen and kept on disk by
//! src/cuda/conv_algo.rs (deterministic unless the policy is `fastest`; direct-sum algorithms
//! for f32), cached in the device's cuDNN state (src/cuda/dnn.rs); workspaces come from the
//! pool allocator.

use super::Conv2dKernels;
use super::Geometry;
use crate::cuda::alloc::DeviceBuffer;
use crate::cuda::conv_algo::{Direction, Searched};
use crate::cuda::dnn::{search_workspace, with_dnn, Dnn, Key, Memo};
use crate::cuda::driver::cudnn::{self as dnn, *};
use crate::cuda::error::{cuda_err, CudaCall};
use crate::cuda::storage::{empty, gpu_of, storage};
use crate::ops::backend::Cuda;
use crate::{DType, Result, Tensor};
use std::collections::HashMap;
use std::ffi::{c_int, c_void};

fn key(dt: DType, g: &Geometry) -> Key {
    let s = [
        g.n, g.h, g.w, g.cin, g.cout, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups,
        g.ho, g.wo,
    ];
    (dt, crate::conv_policy::conv_algorithms(), s)
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
        }
        Ok(d)
    }

    /// cuDNN's shape arithmetic must be ours: the output buffer is sized by ours. Checked once
    /// per geometry and direction (when its algorithm is chosen), not on every call.
    fn check_output_shape(&self, g: &Geometry) -> Result<()> {
        let mut o: [c_int; 4] = [0; 4];
        let [on, oc, oh, ow] = o.each_mut().map(|v| v as *mut c_int);
        unsafe {
            dnn::get_convolution_2d_forward_output_dim(self.conv, self.x, self.w, on, oc, oh, ow)
        }
        .call("cudnnGetConvolution2dForwardOutputDim")?;
        let ours = [g.n, g.cout, g.ho, g.wo];
        if o.map(|v| usize::try_from(v).unwrap_or(usize::MAX)) != ours {
            return Err(cuda_err(format!(
                "conv2d {g:?}: cuDNN's output (n, c, h, w) is {o:?}, ours {ours:?}"
            )));
        }
        Ok(())
    }
}

/// Builds the cuDNN descriptors of a convolution of `g` in `dt` as a GPU call does, checks that
/// cuDNN's output shape is ours (as a GPU call does on its geometry's first use), and frees
/// them. Host-only: cuDNN must be loaded, no GPU is needed.
pub fn describe(g: &Geometry, dt: DType) -> Result<()> {
    Descs::new(g, dt)?.check_output_shape(g)
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

/// How many algorithms the search asks cuDNN to time.
const SEARCHED: usize = 8;

/// One direction's device pointers: its two inputs in cuDNN's argument order, and its result.
#[derive(Clone, Copy)]
struct Io {
    a: *const c_void,
    b: *const c_void,
    out: *mut c_void,
}

/// One direction of a convolution: where the device's cuDNN state keeps its choice, cuDNN's
/// timed search and the run.
trait Pass: Direction {
    const FIND: &'static str;
    const RUN: &'static str;
    fn chosen(dnn: &mut Dnn) -> &mut HashMap<Key, Memo<Self::Algo>>;
    /// # Safety
    /// Live descriptors; `io` points to device memory of the described sizes, `perf` to
    /// SEARCHED entries.
    unsafe fn find(
        h: cudnnHandle_t,
        d: &Descs,
        io: Io,
        count: *mut c_int,
        perf: *mut Self,
        ws: (*mut c_void, usize),
    ) -> dnn::Result<()>;
    /// The workspace `algo` needs for this convolution under the descriptor's math type.
    ///
    /// # Safety
    /// Live handle and descriptors.
    unsafe fn workspace_size(h: cudnnHandle_t, d: &Descs, algo: Self::Algo) -> dnn::Result<usize>;
    /// # Safety
    /// As `find`, with a workspace of the chosen algorithm's size.
    unsafe fn run(
        h: cudnnHandle_t,
        d: &Descs,
        io: Io,
        algo: Self::Algo,
        ws: (*mut c_void, usize),
    ) -> dnn::Result<()>;
}

/// The directions differ only in their cuDNN calls, their memo and which descriptors describe
/// `a`, `b` and `out`.
macro_rules! pass {
    ($perf:ty, $memo:ident, $size:ident, $find:ident = $fname:literal,
     $run:ident = $rname:literal, ($a:ident, $b:ident, $out:ident)) => {
        impl Pass for $perf {
            const FIND: &'static str = $fname;
            const RUN: &'static str = $rname;
            fn chosen(dnn: &mut Dnn) -> &mut HashMap<Key, Memo<Self::Algo>> {
                &mut dnn.$memo
            }
            unsafe fn workspace_size(
                h: cudnnHandle_t,
                d: &Descs,
                algo: Self::Algo,
            ) -> dnn::Result<usize> {
                let mut bytes = 0;
                dnn::$size(h, d.$a, d.$b, d.conv, d.$out, algo, &mut bytes)?;
                Ok(bytes)
            }
            unsafe fn find(
                h: cudnnHandle_t,
                d: &Descs,
                io: Io,
                count: *mut c_int,
                perf: *mut Self,
                ws: (*mut c_void, usize),
            ) -> dnn::Result<()> {
                let n = SEARCHED as c_int;
                let (a, b, out, conv) = (d.$a, d.$b, d.$out, d.conv);
                dnn::$find(
                    h, a, io.a, b, io.b, conv, out, io.out, n, count, perf, ws.0, ws.1,
                )
            }
            unsafe fn run(
                h: cudnnHandle_t,
                d: &Descs,
                io: Io,
                algo: Self::Algo,
                ws: (*mut c_void, usize),
            ) -> dnn::Result<()> {
                let (a, b, out, conv) = (d.$a, d.$b, d.$out, d.conv);
                let (one, zero) = (one(), zero());
                dnn::$run(
                    h, one, a, io.a, b, io.b, conv, algo, ws.0, ws.1, zero, out, io.out,
                )
            }
        }
    };
}

pass!(
    cudnnConvolutionFwdAlgoPerf_t,
    fwd,
    get_convolution_forward_workspace_size,
    find_convolution_forward_algorithm_ex = "cudnnFindConvolutionForwardAlgorithmEx",
    convolution_forward = "cudnnConvolutionForward",
    (x, w, y)
);
pass!(
    cudnnConvolutionBwdDataAlgoPerf_t,
    bwd_data,
    get_convolution_backward_data_workspace_size,
    find_convolution_backward_data_algorithm_ex = "cudnnFindConvolutionBackwardDataAlgorithmEx",
    convolution_backward_data = "cudnnConvolutionBackwardData",
    (w, y, x)
);
pass!(
    cudnnConvolutionBwdFilterAlgoPerf_t,
    bwd_filter,
    get_convolution_backward_filter_workspace_size,
    find_convolution_backward_filter_algorithm_ex = "cudnnFindConvolutionBackwardFilterAlgorithmEx",
    convolution_backward_filter = "cudnnConvolutionBackwardFilter",
    (x, y, w)
);

/// What each algorithm of direction `P` that may be chosen for `dt` needs for this convolution
/// (f32 leaves out the families `conv_algo` excludes), under the descriptor's math type. An
/// algorithm that does not support the convolution answers NOT_SUPPORTED and is left out.
///
/// # Safety
/// Live handle and descriptors.
unsafe fn workspace_sizes<P: Pass>(h: cudnnHandle_t, d: &Descs, dt: DType) -> Vec<usize> {
    let allowed = |a: &&P::Algo| dt != DType::F32 || !P::excluded_for_f32(P::value(**a));
    let sizes = P::ALGOS.iter().filter(allowed);
    sizes
        .filter_map(|&a| P::workspace_size(h, d, a).ok())
        .collect()
}

/// Runs one direction into `out`: the algorithm comes from the device's memo, else from the
/// choice kept on disk, else from cuDNN's timed search (then kept in both).
fn convolve<P: Pass>(
    a: &Tensor,
    b: &Tensor,
    out: &Tensor,
    g: &Geometry,
    what: &'static str,
) -> Result<()> {
    let gpu = gpu_of(a, what)?;
    let dt = a.dtype();
    let d = Descs::new(g, dt)?;
    let io = Io {
        a: cp(a)?,
        b: cp(b)?,
        out: mp(out)?,
    };
    with_dnn(&gpu, |dnn| unsafe {
        let k = key(dt, g);
        let c = match P::chosen(dnn).get_mut(&k) {
            Some(m) => {
                m.runs += 1;
                m.chosen
            }
            None if crate::cuda::driver::graph::capturing() => {
                // A search runs every algorithm and allocates: not inside a captured step.
                return Err(cuda_err(format!(
                    "{what}: no cuDNN algorithm was chosen for this convolution before the \
                     CUDA graph capture (an eager step chooses them)"
                )));
            }
            None => {
                d.check_output_shape(g)?;
                // The search's math type: f32 stays f32 (FMA math: no TF32); bf16 may use
                // tensor cores (each result says which math type it ran with).
                let search = match dt {
                    DType::F32 => cudnnMathType_t::CUDNN_FMA_MATH,
                    _ => cudnnMathType_t::CUDNN_TENSOR_OP_MATH,
                };
                dnn::set_convolution_math_type(d.conv, search)
                    .call("cudnnSetConvolutionMathType")?;
                let handle = dnn.handle;
                let c = dnn.disk.choose::<P>(dt, k.1, &k.2, || {
                    let sizes = workspace_sizes::<P>(handle, &d, dt);
                    let wanted = sizes.iter().copied().max().unwrap_or(0);
                    let (buf, size) = search_workspace(&gpu, sizes)?;
                    let wsp = buf
                        .as_ref()
                        .map_or(std::ptr::null_mut(), |b| b.ptr() as *mut c_void);
                    // Read back as plain integers (AlgoPerf): cuDNN writes the C struct.
                    let mut perf = [AlgoPerf::default(); SEARCHED];
                    let mut count = 0;
                    let out = perf.as_mut_ptr().cast::<P>();
                    P::find(handle, &d, io, &mut count, out, (wsp, size)).call(P::FIND)?;
                    Ok(Searched {
                        results: perf[..count.clamp(0, SEARCHED as c_int) as usize].to_vec(),
                        short: (size < wanted).then_some((size, wanted)),
                    })
                })?;
                P::chosen(dnn).insert(k, Memo { chosen: c, runs: 1 });
                c
            }
        };
        // The math type the algorithm was measured with (its workspace is that variant's).
        dnn::set_convolution_math_type(d.conv, c.math).call("cudnnSetConvolutionMathType")?;
        let buf = DeviceBuffer::alloc(&gpu, c.workspace)?;
        let wsp = buf.ptr() as *mut c_void;
        let ran = P::run(dnn.handle, &d, io, c.algo, (wsp, c.workspace));
        if ran.is_err() {
            // A choice that fails (a cache from another driver, say) is not kept: the next
            // call, and the next process, search again.
            P::chosen(dnn).remove(&k);
            dnn.disk.forget::<P>(dt, k.1, &k.2);
        }
        ran.call(P::RUN)
    })
}

impl Conv2dKernels for Cuda {
    /// y [n, ho, wo, cout] = conv(x, w).
    fn conv2d_forward(x: &Tensor, w: &Tensor, g: &Geometry) -> Result<Tensor> {
        let y = empty(&gpu_of(x, "conv2d")?, &[g.n, g.ho, g.wo, g.cout], x.dtype())?;
        convolve::<cudnnConvolutionFwdAlgoPerf_t>(x, w, &y, g, "conv2d")?;
        Ok(y)
    }

    /// dx [n, h, w, cin] from dy and w.
    fn conv2d_backward_input(dy: &Tensor, w: &Tensor, g: &Geometry) -> Result<Tensor> {
        let what = "conv2d_backward_input";
        let dx = empty(&gpu_of(dy, what)?, &[g.n, g.h, g.w, g.cin], dy.dtype())?;
        convolve::<cudnnConvolutionBwdDataAlgoPerf_t>(w, dy, &dx, g, what)?;
        Ok(dx)
    }

    /// dw [cout, kh, kw, cin/groups] from x and dy.
    fn conv2d_backward_weight(x: &Tensor, dy: &Tensor, g: &Geometry) -> Result<Tensor> {
        let what = "conv2d_backward_weight";
        let dw = empty(&gpu_of(x, what)?, &[g.cout, g.kh, g.kw, g.cin_g], x.dtype())?;
        convolve::<cudnnConvolutionBwdFilterAlgoPerf_t>(x, dy, &dw, g, what)?;
        Ok(dw)
    }
}
