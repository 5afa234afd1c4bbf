//! Emulated cuDNN: the three directions (Find, then the chosen algorithm) against the CPU
//! reference in f64, and the documented refusals.

use super::common::*;
use simclr::cuda::driver::cudnn::*;
use simclr::cuda::emu::cudnn as dnn;
use simclr::ops::conv2d::{cpu, Conv2dSpec, Geometry};
use simclr::testing::{assert_close, fresh_seed, relative_error, tolerance};
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
pub struct Setup {
    pub h: cudnnHandle_t,
    pub x: cudnnTensorDescriptor_t,
    pub y: cudnnTensorDescriptor_t,
    pub w: cudnnFilterDescriptor_t,
    pub c: cudnnConvolutionDescriptor_t,
}

impl Setup {
    pub fn new(g: &Geometry, dt: DType) -> Setup {
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
            // As the library sets it: FMA keeps f32 out of TF32; bf16 may use tensor cores.
            let math = match dt {
                DType::F32 => cudnnMathType_t::CUDNN_FMA_MATH,
                _ => cudnnMathType_t::CUDNN_TENSOR_OP_MATH,
            };
            dnn::set_convolution_math_type(s.c, math).unwrap();
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
pub const CASES: &[[usize; 10]] = &[
    [2, 7, 6, 4, 6, 3, 1, 1, 1, 1],
    [2, 9, 8, 6, 4, 3, 2, 1, 2, 2],
    [2, 8, 8, 8, 8, 3, 1, 1, 1, 8],
    [3, 5, 5, 4, 8, 1, 1, 0, 1, 1],
    [1, 7, 9, 3, 5, 2, 2, 0, 1, 1],
];

pub fn geometry(c: &[usize; 10]) -> Geometry {
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

/// cudnnFindConvolutionForwardAlgorithmEx over the Setup's descriptors, up to `requested`
/// results into `perf`, with workspace `ws` (pointer, bytes).
#[allow(clippy::too_many_arguments)]
unsafe fn find_forward(
    s: &Setup,
    x: &DevBuf,
    w: &DevBuf,
    y: &mut DevBuf,
    requested: i32,
    count: &mut i32,
    perf: &mut [cudnnConvolutionFwdAlgoPerf_t],
    ws: (*mut c_void, usize),
) -> std::result::Result<(), DnnError> {
    dnn::find_convolution_forward_algorithm_ex(
        s.h,
        s.x,
        ptr(x),
        s.w,
        ptr(w),
        s.c,
        s.y,
        mptr(y),
        requested,
        count,
        perf.as_mut_ptr(),
        ws.0,
        ws.1,
    )
}

#[derive(Clone, Copy, Debug)]
enum Dir {
    Fwd,
    Data,
    Filter,
}

/// Runs `$find` over the Setup's descriptors (cuDNN's argument order for the direction, the
/// output's descriptor and pointer last) with room for 8 results and a 64 MiB workspace;
/// returns (count, perf). In an unsafe context.
macro_rules! search {
    ($s:expr, $find:ident, $perf:ty; ($da:ident, $a:expr), ($db:ident, $b:expr) =>
     ($dout:ident, $out:expr)) => {{
        let s = $s;
        let mut ws = DevBuf::alloc(64 << 20);
        let (mut count, mut perf) = (0, [std::mem::zeroed::<$perf>(); 8]);
        let (wsp, wsn) = (mptr(&mut ws), ws.len());
        dnn::$find(
            s.h,
            s.$da,
            $a,
            s.$db,
            $b,
            s.c,
            s.$dout,
            $out,
            8,
            &mut count,
            perf.as_mut_ptr(),
            wsp,
            wsn,
        )
        .unwrap();
        (count, perf)
    }};
}
pub(crate) use search;

/// Find into an output of zeros, then the fastest algorithm found into one of NaNs; asserts Find's
/// results succeeded and are sorted by time. The inputs and the output are named by their
/// descriptors in the Setup, in cuDNN's argument order for the direction.
macro_rules! find_then_run {
    ($s:ident, $dir:ident, $len:ident, $dt:ident; $find:ident, $run:ident, $perf:ty;
     ($da:ident, $a:ident), ($db:ident, $b:ident) => $dout:ident) => {{
        let (s, a, b) = ($s, ptr($a), ptr($b));
        // Zeros: the search must leave them arbitrary (NaN in the emulation), not a result.
        let mut found = DevBuf::upload(&vec![0u8; $len * $dt.size_in_bytes()]);
        let out = mptr(&mut found);
        let (count, perf) = search!(s, $find, $perf; ($da, a), ($db, b) => ($dout, out));
        assert!((1..=8).contains(&count), "{:?}: returned {count}", $dir);
        let p = &perf[..count as usize];
        let ok = sorted(p.iter().map(|q| (q.time, q.status)));
        assert!(
            ok,
            "{:?}: Find's results are not sorted by time, or one failed",
            $dir
        );
        let (algo, mem) = (p[0].algo, p[0].memory);
        let mut out = dev_nans($len, $dt);
        let mut ws = DevBuf::alloc(mem.max(1));
        let wsp = if mem > 0 {
            mptr(&mut ws)
        } else {
            std::ptr::null_mut()
        };
        dnn::$run(
            s.h,
            one(),
            s.$da,
            a,
            s.$db,
            b,
            s.c,
            algo,
            wsp,
            mem,
            zero(),
            s.$dout,
            mptr(&mut out),
        )
        .unwrap();
        (found.download(), out.download())
    }};
}

/// Runs Find then the chosen algorithm for `dir`; returns (what Find left in its output, the call's output).
/// `a` is x (forward, filter) or dy (data), `b` is w (forward, data) or dy (filter).
unsafe fn run(
    s: &Setup,
    dir: Dir,
    a: &DevBuf,
    b: &DevBuf,
    len: usize,
    dt: DType,
) -> (Vec<u8>, Vec<u8>) {
    match dir {
        Dir::Fwd => find_then_run!(s, dir, len, dt; find_convolution_forward_algorithm_ex,
            convolution_forward, cudnnConvolutionFwdAlgoPerf_t; (x, a), (w, b) => y),
        Dir::Data => find_then_run!(s, dir, len, dt; find_convolution_backward_data_algorithm_ex,
            convolution_backward_data, cudnnConvolutionBwdDataAlgoPerf_t; (w, b), (y, a) => x),
        Dir::Filter => find_then_run!(s, dir, len, dt;
            find_convolution_backward_filter_algorithm_ex, convolution_backward_filter,
            cudnnConvolutionBwdFilterAlgoPerf_t; (x, a), (y, b) => w),
    }
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
                let got = t64(&decode(&out, dt), want.shape());
                assert_close(&format!("{dir:?} {case:?} {dt:?}"), &got, &want, tol);
                // The search leaves arbitrary values (NaN here) where the output goes.
                let left = decode(&found, dt);
                assert!(
                    left.iter().all(|v| v.is_nan()),
                    "{dir:?} {case:?} {dt:?}: the search left a result in its output"
                );
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

/// The descriptor setters and cudnnGetConvolution2dForwardOutputDim give what the real cuDNN
/// 9.19 gives (the table is checked against it by tests/real_cuda_libraries.rs).
#[test]
fn descriptor_rules_are_cudnn_9_19s() {
    bind(0);
    super::cudnn_descriptor_cases::check_all();
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
    let no_ws = (std::ptr::null_mut(), 0);
    refused(
        unsafe { find_forward(&s, &x, &w, &mut y, 0, &mut count, &mut perf, no_ws) },
        BAD,
        "requestedAlgoCount = 0",
    );
    // Find without workspace lists only the algorithm that needs none; `returned <= requested`.
    unsafe { find_forward(&s, &x, &w, &mut y, 1, &mut count, &mut perf, no_ws).unwrap() };
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

/// The math type each search result reports: cuDNN returns an algorithm without tensor-op
/// availability with CUDNN_DEFAULT_MATH although the descriptor asks for tensor ops. In the
/// emulation: the algorithms without a tensor-core variant, and bf16 problems whose channels
/// per group are not multiples of 8.
#[test]
fn a_search_reports_the_math_type_each_algorithm_ran_with() {
    use cudnnConvolutionFwdAlgo_t::*;
    use cudnnMathType_t::*;
    bind(0);
    let search = |cin: usize, cout: usize| {
        let g = geometry(&[2, 6, 6, cin, cout, 3, 1, 1, 1, 1]);
        let dt = DType::BF16;
        let s = Setup::new(&g, dt);
        let x = DevBuf::upload(&vec![0u8; g.n * g.h * g.w * g.cin * 2]);
        let w = DevBuf::upload(&vec![0u8; g.cout * g.k() * 2]);
        let mut y = dev_nans(g.n * g.ho * g.wo * g.cout, dt);
        let mut ws = DevBuf::alloc(64 << 20);
        let (mut count, mut perf) = (0, [unsafe { std::mem::zeroed() }; 8]);
        let ws = (mptr(&mut ws), ws.len());
        unsafe { find_forward(&s, &x, &w, &mut y, 8, &mut count, &mut perf, ws).unwrap() };
        let found: &[cudnnConvolutionFwdAlgoPerf_t] = &perf[..count as usize];
        found
            .iter()
            .map(|p| (p.algo, p.mathType))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        search(8, 16),
        [
            (
                CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                CUDNN_TENSOR_OP_MATH
            ),
            (CUDNN_CONVOLUTION_FWD_ALGO_GEMM, CUDNN_DEFAULT_MATH),
            (CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_DEFAULT_MATH),
        ]
    );
    assert!(search(5, 16).iter().all(|r| r.1 == CUDNN_DEFAULT_MATH));
}

/// FLOAT data under any math type but CUDNN_FMA_MATH may be multiplied in TF32 by an algorithm
/// with tensor cores (cuDNN's rule on Ampere-class GPUs and newer): a convolution whose math
/// type was not set to the one it was chosen with loses f32 accuracy.
#[test]
fn f32_multiplies_in_tf32_on_tensor_cores_unless_the_math_type_is_fma() {
    use cudnnConvolutionFwdAlgo_t::*;
    use cudnnMathType_t::*;
    bind(0);
    let mut rng = Rng::new(fresh_seed("emu cudnn tf32"));
    let g = geometry(&CASES[0]);
    let dt = DType::F32;
    let s = Setup::new(&g, dt);
    let (xs, ws_) = ([g.n, g.h, g.w, g.cin], [g.cout, g.kh, g.kw, g.cin_g]);
    let (xv, xb) = random(xs.iter().product(), dt, &mut rng);
    let (wv, wb) = random(ws_.iter().product(), dt, &mut rng);
    let (xb, wb) = (DevBuf::upload(&xb), DevBuf::upload(&wb));
    let reference = |x: &[f64], w: &[f64]| cpu::forward::<f64>(&t64(x, &xs), &t64(w, &ws_), &g);
    let exact = reference(&xv, &wv).unwrap();
    let round = |v: &[f64]| v.iter().map(|&e| tf32_reference(e)).collect::<Vec<_>>();
    let in_tf32 = reference(&round(&xv), &round(&wv)).unwrap();
    let tol = tolerance(dt, g.k(), 1);
    let mut ws = DevBuf::alloc(64 << 20);
    let (wsp, wsn) = (mptr(&mut ws), ws.len());
    for math in [CUDNN_DEFAULT_MATH, CUDNN_TENSOR_OP_MATH, CUDNN_FMA_MATH] {
        for (algo, cores) in [
            (CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, true),
            (CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, false),
        ] {
            let mut y = dev_nans(exact.numel(), dt);
            unsafe {
                dnn::set_convolution_math_type(s.c, math).unwrap();
                dnn::convolution_forward(
                    s.h,
                    one(),
                    s.x,
                    ptr(&xb),
                    s.w,
                    ptr(&wb),
                    s.c,
                    algo,
                    wsp,
                    wsn,
                    zero(),
                    s.y,
                    mptr(&mut y),
                )
                .unwrap();
            }
            let got = t64(&decode(&y.download(), dt), exact.shape());
            let what = format!("{math:?} {algo:?}");
            let (want, other) = if cores && math != CUDNN_FMA_MATH {
                (&in_tf32, &exact)
            } else {
                (&exact, &in_tf32)
            };
            assert_close(&what, &got, want, tol);
            // TF32's error is about 2^-11, far beyond f32's tolerance: the two are told apart.
            let (g, o) = (got.to_vec_f64().unwrap(), other.to_vec_f64().unwrap());
            let err = relative_error(&g, &o);
            assert!(
                err > 8.0 * tol,
                "{what}: {err:.3e} from the other reference"
            );
        }
    }
}
