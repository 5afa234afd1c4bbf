//! Emulated cuBLAS: cublasGemmEx against an f64 reference for every transpose pair at f32 and
//! bf16 with padded leading dimensions, and the documented refusals.

use super::common::*;
use simclr::cuda::driver::cublas::*;
use simclr::cuda::emu::cublas as blas;
use simclr::testing::{fresh_seed, relative_error, tolerance};
use simclr::{DType, Rng};
use std::ffi::c_void;

fn ty(dt: DType) -> cudaDataType {
    match dt {
        DType::BF16 => cudaDataType::CUDA_R_16BF,
        _ => cudaDataType::CUDA_R_32F,
    }
}
fn op(t: bool) -> cublasOperation_t {
    if t {
        cublasOperation_t::CUBLAS_OP_T
    } else {
        cublasOperation_t::CUBLAS_OP_N
    }
}
fn f(v: &f32) -> *const c_void {
    v as *const f32 as *const c_void
}

#[test]
fn gemm_matches_the_reference_for_every_transpose_pair() {
    let mut rng = Rng::new(fresh_seed("emu cublas gemm"));
    bind(0);
    let h = blas::create_handle().unwrap();
    // Allocations are 256-byte aligned, as cudaMalloc's.
    let mut ws = DevBuf::alloc(4096);
    unsafe { blas::set_workspace(h, ws.at(0), 4096).unwrap() };
    let (m, n, k) = (7usize, 5usize, 9usize);
    for dt in [DType::F32, DType::BF16] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            for beta in [0.0f32, 0.75] {
                // Stored shapes (column-major) with leading dimensions padded by 2.
                let (ar, ac) = if ta { (k, m) } else { (m, k) };
                let (br, bc) = if tb { (n, k) } else { (k, n) };
                let (lda, ldb, ldc) = (ar + 2, br + 2, m + 2);
                let (av, ab) = random((ac - 1) * lda + ar, dt, &mut rng);
                let (bv, bb) = random((bc - 1) * ldb + br, dt, &mut rng);
                let (ab, bb) = (DevBuf::upload(&ab), DevBuf::upload(&bb));
                let (cv, cb) = if beta == 0.0 {
                    let len = (n - 1) * ldc + m;
                    (vec![f64::NAN; len], nans(len, dt))
                } else {
                    random((n - 1) * ldc + m, dt, &mut rng)
                };
                let mut cb = DevBuf::upload(&cb);
                let alpha = 1.5f32;
                unsafe {
                    blas::gemm_ex(
                        h,
                        op(ta),
                        op(tb),
                        m as i32,
                        n as i32,
                        k as i32,
                        f(&alpha),
                        ptr(&ab),
                        ty(dt),
                        lda as i32,
                        ptr(&bb),
                        ty(dt),
                        ldb as i32,
                        f(&beta),
                        mptr(&mut cb),
                        ty(dt),
                        ldc as i32,
                        cublasComputeType_t::CUBLAS_COMPUTE_32F,
                        cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                    )
                    .unwrap();
                }
                let a_at = |i: usize, p: usize| if ta { av[p + i * lda] } else { av[i + p * lda] };
                let b_at = |p: usize, j: usize| if tb { bv[j + p * ldb] } else { bv[p + j * ldb] };
                let got = decode(&cb.download(), dt);
                let (mut g, mut w) = (Vec::new(), Vec::new());
                for j in 0..n {
                    for i in 0..m {
                        let s: f64 = (0..k).map(|p| a_at(i, p) * b_at(p, j)).sum();
                        let old = if beta == 0.0 {
                            0.0
                        } else {
                            beta as f64 * cv[i + j * ldc]
                        };
                        w.push(alpha as f64 * s + old);
                        g.push(got[i + j * ldc]);
                    }
                    // The gap between columns is not C's and stays as it was.
                    if j + 1 < n {
                        for i in m..ldc {
                            let (x, y) = (got[i + j * ldc], cv[i + j * ldc]);
                            assert!(
                                x == y || (x.is_nan() && y.is_nan()),
                                "gap written at ({i}, {j})"
                            );
                        }
                    }
                }
                let (err, tol) = (relative_error(&g, &w), tolerance(dt, k, 2));
                assert!(
                    err <= tol,
                    "{dt:?} ta={ta} tb={tb} beta={beta}: error {err:e} > {tol:e}"
                );
            }
        }
    }
}

#[track_caller]
fn refused(r: std::result::Result<(), BlasError>, status: cublasStatus_t, needle: &str) {
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
fn gemm_refusals() {
    use cublasStatus_t::*;
    bind(0);
    let h = blas::create_handle().unwrap();
    let (a, b) = (
        DevBuf::upload(&[0u8; 4 * 64]),
        DevBuf::upload(&[0u8; 4 * 64]),
    );
    let mut c = dev_nans(64, DType::F32);
    let (one, zero) = (1.0f32, 0.0f32);
    let call = |h: cublasHandle_t,
                m: i32,
                lda: i32,
                at: cudaDataType,
                ct: cudaDataType,
                c: &mut DevBuf| unsafe {
        blas::gemm_ex(
            h,
            op(false),
            op(false),
            m,
            4,
            4,
            f(&one),
            ptr(&a),
            at,
            lda,
            ptr(&b),
            at,
            4,
            f(&zero),
            mptr(c),
            ct,
            4,
            cublasComputeType_t::CUBLAS_COMPUTE_32F,
            cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
    };
    let f32t = cudaDataType::CUDA_R_32F;
    refused(
        call(h, 4, 3, f32t, f32t, &mut c),
        CUBLAS_STATUS_INVALID_VALUE,
        "lda = 3; must be >= 4",
    );
    refused(
        call(h, -1, 4, f32t, f32t, &mut c),
        CUBLAS_STATUS_INVALID_VALUE,
        "m = -1",
    );
    refused(
        call(
            h,
            4,
            4,
            cudaDataType::CUDA_R_16BF,
            cudaDataType::CUDA_R_16F,
            &mut c,
        ),
        CUBLAS_STATUS_NOT_SUPPORTED,
        "not in cuBLAS's table",
    );
    refused(
        call(0x20 as cublasHandle_t, 4, 4, f32t, f32t, &mut c),
        CUBLAS_STATUS_NOT_INITIALIZED,
        "not a live",
    );
    // While a graph is captured too: cuBLAS checks the arguments at the call.
    let stream = simclr::cuda::driver::event::stream_create().unwrap();
    unsafe {
        blas::set_stream(h, stream).unwrap();
        simclr::cuda::driver::graph::stream_begin_capture(stream).unwrap();
    }
    let during = call(h, 4, 3, f32t, f32t, &mut c);
    let captured = unsafe { simclr::cuda::driver::graph::stream_end_capture(stream) }.unwrap();
    unsafe { simclr::cuda::driver::graph::graph_destroy(captured) }.unwrap();
    refused(during, CUBLAS_STATUS_INVALID_VALUE, "lda = 3; must be >= 4");
    unsafe { blas::set_stream(h, std::ptr::null_mut()).unwrap() };
    assert!(
        decode(&c.download(), DType::F32).iter().all(|v| v.is_nan()),
        "a refused call wrote C"
    );
    call(h, 4, 4, f32t, f32t, &mut c).unwrap();
    assert!(decode(&c.download(), DType::F32)[..16]
        .iter()
        .all(|v| *v == 0.0));
    let mut ws = DevBuf::alloc(1024);
    refused(
        unsafe { blas::set_workspace(h, ws.at(8), 256) },
        CUBLAS_STATUS_INVALID_VALUE,
        "256 bytes",
    );
}

#[test]
fn set_stream_resets_the_workspace_and_destroy_ends_the_handle() {
    use cublasStatus_t::*;
    let h = blas::create_handle().unwrap();
    let mut ws = DevBuf::alloc(4096);
    unsafe { blas::set_workspace(h, ws.at(0), 4096).unwrap() };
    let of = |h| blas::with_handle(h, |s| s.workspace).unwrap();
    assert_eq!(of(h), (ws.at(0) as u64, 4096));
    // As cuBLAS documents: cublasSetStream sets the library's own workspace back.
    unsafe { blas::set_stream(h, std::ptr::null_mut()).unwrap() };
    assert_eq!(of(h), (0, 0));
    unsafe { blas::destroy_handle(h).unwrap() };
    refused(
        unsafe { blas::set_stream(h, std::ptr::null_mut()) },
        CUBLAS_STATUS_NOT_INITIALIZED,
        "not a live",
    );
    refused(
        unsafe { blas::destroy_handle(h) },
        CUBLAS_STATUS_NOT_INITIALIZED,
        "not a live",
    );
}

/// A 16-bit C under cuBLAS's default math mode may be the sum of split-K partial sums, each
/// rounded to C's type; CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION (the library's mode)
/// keeps one rounding of the f32 sum. The emulation takes that worst case whenever allowed.
#[test]
fn a_bf16_product_rounds_once_only_when_reduced_precision_reductions_are_disallowed() {
    let mut rng = Rng::new(fresh_seed("emu cublas split-k"));
    bind(0);
    let (m, n, k, dt) = (8usize, 8usize, 4 * blas::SPLIT_K, DType::BF16);
    let (av, ab) = random(m * k, dt, &mut rng);
    let (bv, bb) = random(k * n, dt, &mut rng);
    let (ab, bb) = (DevBuf::upload(&ab), DevBuf::upload(&bb));
    // One rounding of the f32 sum (the f64 sum rounded to f32 first, as the emulation does).
    let once: Vec<f64> = (0..m * n)
        .map(|e| {
            let (i, j) = (e % m, e / m);
            let s: f64 = (0..k).map(|l| av[i + l * m] * bv[l + j * k]).sum();
            decode(&encode(&[f64::from(s as f32)], dt), dt)[0]
        })
        .collect();
    let product = |mode: cublasMath_t| {
        plain_product(
            mode,
            cublasComputeType_t::CUBLAS_COMPUTE_32F,
            (m, n, k),
            (&ab, &bb),
            dt,
        )
    };
    let disallowed = product(cublasMath_t::CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
    assert_eq!(disallowed, once, "one rounding of the f32 sum");
    let allowed = product(cublasMath_t::CUBLAS_DEFAULT_MATH);
    let differ = allowed.iter().zip(&once).filter(|(a, b)| a != b).count();
    assert!(
        differ > 0,
        "split-K partials rounded to bf16 changed no element"
    );
}

/// f32 inputs are narrowed where the call permits it (the fast compute types, and 32F under
/// CUBLAS_TF32_TENSOR_OP_MATH), and kept whole otherwise: a product that should be f32-exact
/// but runs with one of those settings is told apart at f32's tolerance.
#[test]
fn fast_compute_types_and_tf32_math_narrow_f32_inputs() {
    use cublasComputeType_t::*;
    use cublasMath_t::*;
    let mut rng = Rng::new(fresh_seed("emu cublas fast modes"));
    bind(0);
    let (m, n, k, dt) = (6usize, 5usize, 64usize, DType::F32);
    let (av, ab) = random(m * k, dt, &mut rng);
    let (bv, bb) = random(k * n, dt, &mut rng);
    let (ab, bb) = (DevBuf::upload(&ab), DevBuf::upload(&bb));
    let reference = |narrow: &dyn Fn(f64) -> f64| -> Vec<f64> {
        (0..m * n)
            .map(|e| {
                let (i, j) = (e % m, e / m);
                (0..k)
                    .map(|l| narrow(av[i + l * m]) * narrow(bv[l + j * k]))
                    .sum()
            })
            .collect()
    };
    let through = |to: DType| move |v: f64| decode(&encode(&[v], to), to)[0];
    let full = reference(&|v| v);
    let tol = tolerance(dt, k, 1);
    let cases: [(cublasComputeType_t, cublasMath_t, Vec<f64>); 5] = [
        (CUBLAS_COMPUTE_32F, CUBLAS_DEFAULT_MATH, full.clone()),
        (
            CUBLAS_COMPUTE_32F,
            CUBLAS_TF32_TENSOR_OP_MATH,
            reference(&tf32_reference),
        ),
        (
            CUBLAS_COMPUTE_32F_FAST_TF32,
            CUBLAS_DEFAULT_MATH,
            reference(&tf32_reference),
        ),
        (
            CUBLAS_COMPUTE_32F_FAST_16BF,
            CUBLAS_DEFAULT_MATH,
            reference(&through(DType::BF16)),
        ),
        (
            CUBLAS_COMPUTE_32F_FAST_16F,
            CUBLAS_DEFAULT_MATH,
            reference(&through(DType::F16)),
        ),
    ];
    for (compute, math, want) in cases {
        let got = plain_product(math, compute, (m, n, k), (&ab, &bb), dt);
        let what = format!("{compute:?} {math:?}");
        let err = relative_error(&got, &want);
        assert!(err <= tol, "{what}: {err:.3e} from its reference");
        if want != full {
            let apart = relative_error(&got, &full);
            assert!(apart > 8.0 * tol, "{what}: {apart:.3e} from full f32");
        }
    }
}

/// C = A·B (column-major, no transposes, leading dimensions m and k) in `dt` on a new handle
/// with math mode `math` and compute type `compute`, as f64.
fn plain_product(
    math: cublasMath_t,
    compute: cublasComputeType_t,
    (m, n, k): (usize, usize, usize),
    (a, b): (&DevBuf, &DevBuf),
    dt: DType,
) -> Vec<f64> {
    let h = blas::create_handle().unwrap();
    let mut c = dev_nans(m * n, dt);
    let (alpha, beta) = (1.0f32, 0.0f32);
    unsafe {
        blas::set_math_mode(h, math).unwrap();
        blas::gemm_ex(
            h,
            op(false),
            op(false),
            m as i32,
            n as i32,
            k as i32,
            f(&alpha),
            ptr(a),
            ty(dt),
            m as i32,
            ptr(b),
            ty(dt),
            k as i32,
            f(&beta),
            mptr(&mut c),
            ty(dt),
            m as i32,
            compute,
            cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
        .unwrap();
        blas::destroy_handle(h).unwrap();
    }
    decode(&c.download(), dt)
}
