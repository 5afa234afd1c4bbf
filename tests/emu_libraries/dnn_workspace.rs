//! cudnnGetConvolution*WorkspaceSize of the emulated cuDNN: for every direction, dtype and
//! geometry each algorithm's size is what a search reports for it (the library sizes its
//! search's workspace by these), an algorithm the emulation does not list is NOT_SUPPORTED, and
//! the arguments are checked as a convolution call checks them.

use super::common::*;
use super::dnn::{geometry, refused, search, Setup, CASES};
use simclr::cuda::driver::cudnn::*;
use simclr::cuda::emu::cudnn as dnn;
use simclr::DType;

/// Runs direction `$find` with room for every algorithm, then asks `$size` for each algorithm
/// found: the pairs (reported by the search, answered by the size query) must agree.
macro_rules! sizes_agree {
    ($s:ident, $bufs:ident, $what:expr; $find:ident, $size:ident, $perf:ty;
     ($da:ident, $a:ident), ($db:ident, $b:ident) => $dout:ident) => {{
        let (a, b) = (ptr(&$bufs.$a), ptr(&$bufs.$b));
        let out = mptr(&mut $bufs.$dout);
        let (count, perf) =
            unsafe { search!(&$s, $find, $perf; ($da, a), ($db, b) => ($dout, out)) };
        let s = &$s;
        assert!(count >= 2, "{}: the search returned {count}", $what);
        for p in &perf[..count as usize] {
            let mut bytes = usize::MAX;
            unsafe { dnn::$size(s.h, s.$da, s.$db, s.c, s.$dout, p.algo, &mut bytes) }.unwrap();
            assert_eq!(bytes, p.memory, "{} {:?}", $what, p.algo);
        }
        perf[..count as usize]
            .iter()
            .map(|p| p.memory)
            .max()
            .unwrap()
    }};
}

/// One convolution's device buffers, named as the Setup's descriptors (y for dy, and so on).
struct Bufs {
    x: DevBuf,
    w: DevBuf,
    y: DevBuf,
}

#[test]
fn each_algorithms_size_is_what_a_search_reports() {
    bind(0);
    let mut largest = 0;
    for case in CASES {
        for dt in [DType::F32, DType::BF16] {
            let g = geometry(case);
            let s = Setup::new(&g, dt);
            let zeros = |n: usize| DevBuf::upload(&vec![0u8; n * dt.size_in_bytes()]);
            let mut bufs = Bufs {
                x: zeros(g.n * g.h * g.w * g.cin),
                w: zeros(g.cout * g.k()),
                y: zeros(g.n * g.ho * g.wo * g.cout),
            };
            let what = format!("{case:?} {}", dt.name());
            let sizes = [
                sizes_agree!(s, bufs, format!("{what} fwd"); find_convolution_forward_algorithm_ex,
                    get_convolution_forward_workspace_size, cudnnConvolutionFwdAlgoPerf_t;
                    (x, x), (w, w) => y),
                sizes_agree!(s, bufs, format!("{what} bwd_data");
                    find_convolution_backward_data_algorithm_ex,
                    get_convolution_backward_data_workspace_size,
                    cudnnConvolutionBwdDataAlgoPerf_t; (w, w), (y, y) => x),
                sizes_agree!(s, bufs, format!("{what} bwd_filter");
                    find_convolution_backward_filter_algorithm_ex,
                    get_convolution_backward_filter_workspace_size,
                    cudnnConvolutionBwdFilterAlgoPerf_t; (x, x), (y, y) => w),
            ];
            largest = largest.max(sizes.into_iter().max().unwrap());
        }
    }
    // The agreement means something only if some algorithm needs a workspace.
    assert!(largest > 0, "no algorithm of any case needs a workspace");
}

#[test]
fn size_queries_refuse_what_cudnn_refuses() {
    use cudnnConvolutionFwdAlgo_t::*;
    use cudnnStatus_t::{CUDNN_STATUS_BAD_PARAM as BAD, CUDNN_STATUS_NOT_SUPPORTED as NS};
    bind(0);
    let g = geometry(&CASES[0]);
    let s = Setup::new(&g, DType::BF16);
    let mut bytes = 7usize;
    let fwd = |y, algo, out: *mut usize| unsafe {
        dnn::get_convolution_forward_workspace_size(s.h, s.x, s.w, s.c, y, algo, out)
    };
    let ns = fwd(s.y, CUDNN_CONVOLUTION_FWD_ALGO_FFT, &mut bytes);
    refused(ns, NS, "CUDNN_CONVOLUTION_FWD_ALGO_FFT");
    let implicit = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    refused(fwd(s.y, implicit, std::ptr::null_mut()), BAD, "sizeInBytes");
    let unset = dnn::create_tensor_descriptor().unwrap();
    refused(fwd(unset, implicit, &mut bytes), BAD, "yDesc");
    assert_eq!(bytes, 7, "a refused query wrote its answer");
    unsafe { dnn::destroy_tensor_descriptor(unset) }.unwrap();
    // A descriptor whose dims disagree with the convolution: as the convolution refuses it.
    let wrong = Setup::new(&geometry(&CASES[3]), DType::BF16);
    let r = fwd(wrong.y, implicit, &mut bytes);
    assert!(
        r.is_err(),
        "a y descriptor of another convolution was accepted"
    );
    fwd(s.y, implicit, &mut bytes).unwrap();
    assert_eq!(
        bytes, 0,
        "IMPLICIT_GEMM needs no workspace in the emulation"
    );
}
