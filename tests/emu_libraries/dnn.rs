//! Emulated cuDNN: the three directions (Find, then the chosen algorithm) against the CPU
//! reference in f64, and the documented refusals.

use super::common::*;
use simclr::cuda::driver::cudnn::*;
use simclr::cuda::emu::cudnn as dnn;
use simclr::ops::conv2d::{cpu, Conv2dSpec, Geometry};
use simclr::testing::{assert_close, fresh_seed, tolerance};
use simclr::{DType, Rng, Tensor};
use std::ffi::c_void;

const NHWC: cudnnTensorFormat_t = cudnnTensorFormat_t::CUDNN_TENSOR_NHWC;
const NCHW: cudnnTensorFormat_t = cudnnTensorFormat_t::CUDNN_TENSOR_NCHW;

fn ty(dt: DType) -> cudnnDataType_t {
    match dt {
        DType::F32 => cudnnDataType_t::CUDNN_DATA_FLOAT,
        DType::BF16 => cudnnDataType_t::CUDNN_DATA_BFLOAT16,
        DType::F64 => cudnnDataType_t::CUDNN_DATA_DOUBLE,
        DType::F16 => cudnnDataType_t::CUDNN_DATA_HALF,
    }
}

/// A handle and the descriptors of one convolution (set as `src/ops/conv2d/cuda.rs` sets them).
struct Setup {
    h: cudnnHandle_t,
    x: cudnnTensorDescriptor_t,
    y: cudnnTensorDescriptor_t,
    w: cudnnFilterDescriptor_t,
    c: cudnnConvolutionDescriptor_t,
}

impl Setup {
    fn new(g: &Geometry, dt: DType) -> Setup {
        let s = Setup {
            h: dnn::create_handle().unwrap(),
            x: dnn::create_tensor_descriptor().unwrap(),
            y: dnn::create_tensor_descriptor().unwrap(),
            w: dnn::create_filter_descriptor().unwrap(),
            c: dnn::create_convolution_descriptor().unwrap(),
        };
        let i = |v: usize| v as i32;
        unsafe {
            dnn::set_tensor_4d_descriptor(s.x, NHWC, ty(dt), i(g.n), i(g.cin), i(g.h), i(g.w))
                .unwrap();
            dnn::set_tensor_4d_descriptor(s.y, NHWC, ty(dt), i(g.n), i(g.cout), i(g.ho), i(g.wo))
                .unwrap();
            dnn::set_filter_4d_descriptor(
                s.w,
                ty(dt),
                NHWC,
                i(g.cout),
                i(g.cin_g),
                i(g.kh),
                i(g.kw),
            )
            .unwrap();
            dnn::set_convolution_2d_descriptor(
                s.c,
                i(g.ph),
                i(g.pw),
                i(g.sh),
                i(g.sw),
                i(g.dh),
                i(g.dw),
                cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
                cudnnDataType_t::CUDNN_DATA_FLOAT,
            )
            .unwrap();
            dnn::set_convolution_group_count(s.c, i(g.groups)).unwrap();
            dnn::set_convolution_math_type(s.c, cudnnMathType_t::CUDNN_TENSOR_OP_MATH).unwrap();
        }
        s
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        unsafe {
            dnn::destroy_tensor_descriptor(self.x).unwrap();
            dnn::destroy_tensor_descriptor(self.y).unwrap();
            dnn::destroy_filter_descriptor(self.w).unwrap();
            dnn::destroy_convolution_descriptor(self.c).unwrap();
        }
    }
}

/// (n, h, w, cin, cout, kernel, stride, pad, dilation, groups)
const CASES: &[[usize; 10]] = &[
    [2, 7, 6, 4, 6, 3, 1, 1, 1, 1],
    [2, 9, 8, 6, 4, 3, 2, 1, 2, 2],
    [2, 8, 8, 8, 8, 3, 1, 1, 1, 8],
    [3, 5, 5, 4, 8, 1, 1, 0, 1, 1],
    [1, 7, 9, 3, 5, 2, 2, 0, 1, 1],
];

fn geometry(c: &[usize; 10]) -> Geometry {
    let [n, h, w, cin, cout, k, s, p, d, gr] = *c;
    let spec = Conv2dSpec::new(s, p).with_dilation(d).with_groups(gr);
    Geometry::new(&[n, h, w, cin], &[cout, k, k, cin / gr], &spec).unwrap()
}

fn t64(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_f64(v, shape, DType::F64).unwrap()
}

fn one() -> *const c_void {
    &1.0f32 as *const f32 as *const c_void
}
fn zero() -> *const c_void {
    &0.0f32 as *const f32 as *const c_void
}

#[derive(Clone, Copy, Debug)]
enum Dir {
    Fwd,
    Data,
    Filter,
}

/// Runs Find then the chosen algorithm for `dir`; returns (Find's output, the call's output).
unsafe fn run(
    s: &Setup,
    dir: Dir,
    a: &DevBuf,
    b: &DevBuf,
    out_len: usize,
    dt: DType,
) -> (Vec<u8>, Vec<u8>) {
    let mut found = dev_nans(out_len, dt);
    let mut ws = DevBuf::alloc(64 << 20);
    let mut count = 0;
    let (algo_ws, perf_ok) = match dir {
        Dir::Fwd => {
            let mut perf = [std::mem::zeroed::<cudnnConvolutionFwdAlgoPerf_t>(); 8];
            dnn::find_convolution_forward_algorithm_ex(
                s.h,
                s.x,
                ptr(a),
                s.w,
                ptr(b),
                s.c,
                s.y,
                mptr(&mut found),
                8,
                &mut count,
                perf.as_mut_ptr(),
                mptr(&mut ws),
                ws.len(),
            )
            .unwrap();
            let p = &perf[..count as usize];
            (
                Some((p[0].algo as u32, p[0].memory)),
                sorted(p.iter().map(|q| (q.time, q.status))),
            )
        }
        Dir::Data => {
            let mut perf = [std::mem::zeroed::<cudnnConvolutionBwdDataAlgoPerf_t>(); 8];
            dnn::find_convolution_backward_data_algorithm_ex(
                s.h,
                s.w,
                ptr(b),
                s.y,
                ptr(a),
                s.c,
                s.x,
                mptr(&mut found),
                8,
                &mut count,
                perf.as_mut_ptr(),
                mptr(&mut ws),
                ws.len(),
            )
            .unwrap();
            let p = &perf[..count as usize];
            (
                Some((p[0].algo as u32, p[0].memory)),
                sorted(p.iter().map(|q| (q.time, q.status))),
            )
        }
        Dir::Filter => {
            let mut perf = [std::mem::zeroed::<cudnnConvolutionBwdFilterAlgoPerf_t>(); 8];
            dnn::find_convolution_backward_filter_algorithm_ex(
                s.h,
                s.x,
                ptr(a),
                s.y,
                ptr(b),
                s.c,
                s.w,
                mptr(&mut found),
                8,
                &mut count,
                perf.as_mut_ptr(),
                mptr(&mut ws),
                ws.len(),
            )
            .unwrap();
            let p = &perf[..count as usize];
            (
                Some((p[0].algo as u32, p[0].memory)),
                sorted(p.iter().map(|q| (q.time, q.status))),
            )
        }
    };
    assert!(
        perf_ok,
        "{dir:?}: Find's results are not sorted by time, or one failed"
    );
    assert!((1..=8).contains(&count), "{dir:?}: returned {count}");
    let (code, mem) = algo_ws.unwrap();
    let mut out = dev_nans(out_len, dt);
    let mut ws = DevBuf::alloc(mem.max(1));
    let wsp = if mem > 0 {
        mptr(&mut ws)
    } else {
        std::ptr::null_mut()
    };
    match dir {
        Dir::Fwd => dnn::convolution_forward(
            s.h,
            one(),
            s.x,
            ptr(a),
            s.w,
            ptr(b),
            s.c,
            std::mem::transmute::<u32, cudnnConvolutionFwdAlgo_t>(code),
            wsp,
            mem,
            zero(),
            s.y,
            mptr(&mut out),
        ),
        Dir::Data => dnn::convolution_backward_data(
            s.h,
            one(),
            s.w,
            ptr(b),
            s.y,
            ptr(a),
            s.c,
            std::mem::transmute::<u32, cudnnConvolutionBwdDataAlgo_t>(code),
            wsp,
            mem,
            zero(),
            s.x,
            mptr(&mut out),
        ),
        Dir::Filter => dnn::convolution_backward_filter(
            s.h,
            one(),
            s.x,
            ptr(a),
            s.y,
            ptr(b),
            s.c,
            std::mem::transmute::<u32, cudnnConvolutionBwdFilterAlgo_t>(code),
            wsp,
            mem,
            zero(),
            s.w,
            mptr(&mut out),
        ),
    }
    .unwrap();
    (found.download(), out.download())
}

fn sorted(it: impl Iterator<Item = (f32, cudnnStatus_t)>) -> bool {
    let v: Vec<_> = it.collect();
    v.iter()
        .all(|(_, s)| *s == cudnnStatus_t::CUDNN_STATUS_SUCCESS)
        && v.windows(2).all(|w| w[0].0 <= w[1].0)
}

#[test]
fn convolutions_match_the_cpu_reference() {
    bind(0);
    let mut rng = Rng::new(fresh_seed("emu cudnn convolutions"));
    for dt in [DType::F32, DType::BF16] {
        for case in CASES {
            let g = geometry(case);
            let s = Setup::new(&g, dt);
            let (xs, ws_, ys) = (
                [g.n, g.h, g.w, g.cin],
                [g.cout, g.kh, g.kw, g.cin_g],
                [g.n, g.ho, g.wo, g.cout],
            );
            let numel = |s: &[usize]| s.iter().product::<usize>();
            let (xv, xb) = random(numel(&xs), dt, &mut rng);
            let (wv, wb) = random(numel(&ws_), dt, &mut rng);
            let (yv, yb) = random(numel(&ys), dt, &mut rng);
            let (xb, wb, yb) = (
                DevBuf::upload(&xb),
                DevBuf::upload(&wb),
                DevBuf::upload(&yb),
            );
            let (x64, w64, y64) = (t64(&xv, &xs), t64(&wv, &ws_), t64(&yv, &ys));
            let refs = [
                (
                    Dir::Fwd,
                    cpu::forward::<f64>(&x64, &w64, &g).unwrap(),
                    &xb,
                    &wb,
                    g.k(),
                ),
                (
                    Dir::Data,
                    cpu::backward_input::<f64>(&y64, &w64, &g).unwrap(),
                    &yb,
                    &wb,
                    g.cout_g * g.kh * g.kw,
                ),
                (
                    Dir::Filter,
                    cpu::backward_weight::<f64>(&x64, &y64, &g).unwrap(),
                    &xb,
                    &yb,
                    g.n * g.ho * g.wo,
                ),
            ];
            for (dir, want, a, b, k) in refs {
                let (found, out) = unsafe { run(&s, dir, a, b, want.numel(), dt) };
                let tol = tolerance(dt, k, 1);
                for (what, got) in [("Find's output", found), ("output", out)] {
                    let got = t64(&decode(&got, dt), want.shape());
                    assert_close(&format!("{dir:?} {what} {case:?} {dt:?}"), &got, &want, tol);
                }
            }
        }
    }
}

#[test]
fn alpha_and_beta_blend_the_output() {
    bind(0);
    let mut rng = Rng::new(fresh_seed("emu cudnn alpha beta"));
    let g = geometry(&CASES[1]);
    let dt = DType::F32;
    let s = Setup::new(&g, dt);
    let (xv, xb) = random(g.n * g.h * g.w * g.cin, dt, &mut rng);
    let (wv, wb) = random(g.cout * g.k(), dt, &mut rng);
    let (ov, out) = random(g.n * g.ho * g.wo * g.cout, dt, &mut rng);
    let (xb, wb, mut out) = (
        DevBuf::upload(&xb),
        DevBuf::upload(&wb),
        DevBuf::upload(&out),
    );
    let (alpha, beta) = (2.0f32, -0.5f32);
    unsafe {
        dnn::convolution_forward(
            s.h,
            &alpha as *const f32 as *const c_void,
            s.x,
            ptr(&xb),
            s.w,
            ptr(&wb),
            s.c,
            cudnnConvolutionFwdAlgo_t::CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
            std::ptr::null_mut(),
            0,
            &beta as *const f32 as *const c_void,
            s.y,
            mptr(&mut out),
        )
        .unwrap();
    }
    let conv = cpu::forward::<f64>(
        &t64(&xv, &[g.n, g.h, g.w, g.cin]),
        &t64(&wv, &[g.cout, g.kh, g.kw, g.cin_g]),
        &g,
    )
    .unwrap();
    let want: Vec<f64> = conv
        .to_vec_f64()
        .unwrap()
        .iter()
        .zip(&ov)
        .map(|(c, o)| 2.0 * c - 0.5 * o)
        .collect();
    let shape = conv.shape().to_vec();
    assert_close(
        "alpha·conv + beta·y",
        &t64(&decode(&out.download(), dt), &shape),
        &t64(&want, &shape),
        tolerance(dt, g.k(), 2),
    );
}

/// Expects `r` to fail with `status`, its detail mentioning `needle`.
#[track_caller]
pub fn refused(r: std::result::Result<(), DnnError>, status: cudnnStatus_t, needle: &str) {
    match r {
        Ok(()) => panic!("accepted; expected {status:?} mentioning {needle:?}"),
        Err(e) => {
            assert_eq!(e.status, status, "{e:?}");
            assert!(
                e.detail.contains(needle),
                "detail {:?} does not mention {needle:?}",
                e.detail
            );
        }
    }
}

#[test]
fn documented_refusals() {
    use cudnnStatus_t::{CUDNN_STATUS_BAD_PARAM as BAD, CUDNN_STATUS_NOT_SUPPORTED as NS};
    let g = geometry(&CASES[0]);
    let dt = DType::F32;
    bind(0);
    let x = DevBuf::upload(&vec![0u8; g.n * g.h * g.w * g.cin * 4]);
    let w = DevBuf::upload(&vec![0u8; g.cout * g.k() * 4]);
    let fresh = || dev_nans(g.n * g.ho * g.wo * g.cout, dt);
    let mut big = DevBuf::alloc(1 << 20);
    let fwd = |s: &Setup, algo, ws: *mut c_void, bytes: usize, y: &mut DevBuf| unsafe {
        dnn::convolution_forward(
            s.h,
            one(),
            s.x,
            ptr(&x),
            s.w,
            ptr(&w),
            s.c,
            algo,
            ws,
            bytes,
            zero(),
            s.y,
            mptr(y),
        )
    };
    use cudnnConvolutionFwdAlgo_t::*;
    let untouched = |y: &DevBuf| {
        assert!(
            decode(&y.download(), dt).iter().all(|v| v.is_nan()),
            "output written by a refused call"
        )
    };
    // A KCRS (NCHW) filter with NHWC tensors.
    let s = Setup::new(&g, dt);
    unsafe { dnn::set_filter_4d_descriptor(s.w, ty(dt), NCHW, 6, 4, 3, 3).unwrap() };
    let mut y = fresh();
    refused(
        fwd(
            &s,
            CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
            std::ptr::null_mut(),
            0,
            &mut y,
        ),
        NS,
        "formats differ",
    );
    untouched(&y);
    // Output dims that are not cudnnGetConvolution2dForwardOutputDim's.
    let s = Setup::new(&g, dt);
    unsafe { dnn::set_tensor_4d_descriptor(s.y, NHWC, ty(dt), 2, 6, 8, 6).unwrap() };
    refused(
        fwd(
            &s,
            CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
            std::ptr::null_mut(),
            0,
            &mut y,
        ),
        NS,
        "OutputDim gives 7x6",
    );
    // Output channels that are not the filter's k.
    unsafe { dnn::set_tensor_4d_descriptor(s.y, NHWC, ty(dt), 2, 5, 7, 6).unwrap() };
    refused(
        fwd(
            &s,
            CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
            std::ptr::null_mut(),
            0,
            &mut y,
        ),
        BAD,
        "c = 6",
    );
    // A workspace one byte short of what the algorithm needs, and a null one.
    let s = Setup::new(&g, dt);
    let need = g.ho * g.wo * g.k() * 4;
    refused(
        fwd(
            &s,
            CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
            big.at(0),
            need - 1,
            &mut y,
        ),
        BAD,
        &format!("needs {need}"),
    );
    refused(
        fwd(
            &s,
            CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
            std::ptr::null_mut(),
            need,
            &mut y,
        ),
        BAD,
        "workSpace is null",
    );
    untouched(&y);
    fwd(&s, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, big.at(0), need, &mut y).unwrap();
    // An algorithm the emulation does not list.
    let mut y = fresh();
    refused(
        fwd(
            &s,
            CUDNN_CONVOLUTION_FWD_ALGO_FFT,
            big.at(0),
            big.len(),
            &mut y,
        ),
        NS,
        "not available",
    );
    // Mixed data types.
    let s = Setup::new(&g, dt);
    unsafe { dnn::set_filter_4d_descriptor(s.w, ty(DType::BF16), NHWC, 6, 4, 3, 3).unwrap() };
    refused(
        fwd(
            &s,
            CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
            std::ptr::null_mut(),
            0,
            &mut y,
        ),
        BAD,
        "one data type",
    );
    // BFLOAT16 data with DOUBLE compute is not a supported configuration.
    let s = Setup::new(&g, DType::BF16);
    unsafe {
        dnn::set_convolution_2d_descriptor(
            s.c,
            1,
            1,
            1,
            1,
            1,
            1,
            cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
            cudnnDataType_t::CUDNN_DATA_DOUBLE,
        )
        .unwrap()
    };
    refused(
        fwd(
            &s,
            CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
            std::ptr::null_mut(),
            0,
            &mut y,
        ),
        NS,
        "not a supported configuration",
    );
    // Group counts: below one at the setter; one that does not divide the channels at the call.
    let s = Setup::new(&g, dt);
    refused(
        unsafe { dnn::set_convolution_group_count(s.c, 0) },
        BAD,
        "groupCount = 0",
    );
    unsafe { dnn::set_convolution_group_count(s.c, 3).unwrap() };
    refused(
        fwd(
            &s,
            CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
            std::ptr::null_mut(),
            0,
            &mut y,
        ),
        BAD,
        "3 groups",
    );
    // Setters.
    refused(
        unsafe { dnn::set_tensor_4d_descriptor(s.x, NHWC, ty(dt), 0, 4, 7, 6) },
        BAD,
        "n = 0",
    );
    refused(
        unsafe { dnn::set_tensor_4d_descriptor(s.x, NHWC, ty(dt), 65536, 65536, 1, 1) },
        NS,
        "2^31",
    );
    refused(
        unsafe {
            dnn::set_convolution_2d_descriptor(
                s.c,
                -1,
                0,
                1,
                1,
                1,
                1,
                cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
                cudnnDataType_t::CUDNN_DATA_FLOAT,
            )
        },
        BAD,
        "pad_h = -1",
    );
    refused(
        unsafe {
            dnn::set_convolution_2d_descriptor(
                s.c,
                0,
                0,
                1,
                0,
                1,
                1,
                cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
                cudnnDataType_t::CUDNN_DATA_FLOAT,
            )
        },
        BAD,
        "stride) = 0",
    );
    refused(
        unsafe {
            dnn::set_convolution_2d_descriptor(
                s.c,
                0,
                0,
                1,
                1,
                0,
                1,
                cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
                cudnnDataType_t::CUDNN_DATA_FLOAT,
            )
        },
        BAD,
        "dilation_h = 0",
    );
    // Find: requested < 1.
    let s = Setup::new(&g, dt);
    let mut count = 0;
    let mut perf = [unsafe { std::mem::zeroed::<cudnnConvolutionFwdAlgoPerf_t>() }; 1];
    refused(
        unsafe {
            dnn::find_convolution_forward_algorithm_ex(
                s.h,
                s.x,
                ptr(&x),
                s.w,
                ptr(&w),
                s.c,
                s.y,
                mptr(&mut y),
                0,
                &mut count,
                perf.as_mut_ptr(),
                std::ptr::null_mut(),
                0,
            )
        },
        BAD,
        "requestedAlgoCount = 0",
    );
    // Find without workspace lists only the algorithm that needs none; `returned <= requested`.
    unsafe {
        dnn::find_convolution_forward_algorithm_ex(
            s.h,
            s.x,
            ptr(&x),
            s.w,
            ptr(&w),
            s.c,
            s.y,
            mptr(&mut y),
            1,
            &mut count,
            perf.as_mut_ptr(),
            std::ptr::null_mut(),
            0,
        )
        .unwrap()
    };
    assert_eq!(
        (count, perf[0].algo, perf[0].memory),
        (1, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 0)
    );
    // A destroyed descriptor and an unknown handle.
    let dead = dnn::create_tensor_descriptor().unwrap();
    unsafe { dnn::destroy_tensor_descriptor(dead).unwrap() };
    refused(
        unsafe { dnn::set_tensor_4d_descriptor(dead, NHWC, ty(dt), 1, 1, 1, 1) },
        BAD,
        "not live",
    );
    refused(
        unsafe { dnn::destroy_tensor_descriptor(dead) },
        BAD,
        "not a live descriptor",
    );
    let mut bogus = Setup::new(&g, dt);
    let real = bogus.h;
    bogus.h = 0x10 as cudnnHandle_t;
    refused(
        fwd(
            &bogus,
            CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
            std::ptr::null_mut(),
            0,
            &mut y,
        ),
        BAD,
        "handle",
    );
    bogus.h = real;
}
