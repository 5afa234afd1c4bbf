//! Our declarations of the CUDA libraries' C interfaces held against the headers of the very
//! versions a GPU machine loads (PyTorch 2.11's wheels: cuda.h 13.0, cuBLAS 13.1, cuDNN 9.19,
//! NCCL 2.28, nvJPEG 13.0), on a machine without a GPU:
//!
//! - the shape of every function we call through a pointer (`simclr::abi`: the
//!   arguments' count and each one's pointer, integer width or floating kind), ours (nvJPEG's
//!   table, the version queries) and cudarc's (its bindings were generated from cuDNN 9.21 and
//!   NCCL 2.30 headers, not from the libraries we load);
//! - the value of every enumerator and constant we name;
//! - the size and field offsets of every struct we pass or read.
//!
//! A C++ program, written from those lists (tests/support/header_check.rs), includes the real
//! headers and prints what they declare; the test compares it with what the Rust side declares. A mismatch on the GPU
//! would be a wrong argument or a misread struct, which the emulated device (built from our own
//! declarations) cannot see. The emulated device's and symbol checks' complement.
//!
//! The headers: `$SIMCLR_TEST_REAL_CUDA_SITE` (scripts/fetch-real-cuda-libs.sh), as for
//! tests/real_cuda_libraries.rs; without it the test prints `skipped:`, and fails when
//! `SIMCLR_REQUIRE_REAL_LIBS=1` (as CI sets). The compiler: `$CXX`, else `c++`.
#![cfg(feature = "cuda")]

#[path = "support/header_check.rs"]
mod header_check;
#[path = "support/real_site.rs"]
mod real_site;
#[path = "support/rust_files.rs"]
mod rust_files;

use cudarc::cublas::sys as cublas;
use cudarc::cudnn::sys as cudnn;
use cudarc::driver::sys as cu;
use cudarc::nccl::sys as nccl;
use header_check::{mismatches, theirs, Declared, Headers};
use real_site::{real_cuda_site, required_env};
use rust_files::rust_files;
use simclr::abi::Layout;
use simclr::abi_shape;
use simclr::cuda::driver::{loaded, nvjpeg};
use std::path::{Path, PathBuf};

/// cudarc's functions that our code reaches, directly (`sys::`, cudnn.rs's `status_fn!`) or
/// through cudarc's `result` wrappers and `CudaContext`, each with its argument count. Every name
/// the GPU bundle's executables can look up must be here (`SIMCLR_TEST_LIBRARY_NAMES`, below).
macro_rules! cudarc_shapes {
    ($($lib:ident::$f:ident / $n:tt),* $(,)?) => {
        vec![$((stringify!($f), abi_shape!($lib::$f, $n))),*]
    };
}

fn cudarc_functions() -> Vec<(&'static str, String)> {
    cudarc_shapes![
        cu::cuInit / 1,
        cu::cuDeviceGet / 2,
        cu::cuDeviceGetCount / 1,
        cu::cuDeviceGetAttribute / 3,
        cu::cuDeviceTotalMem_v2 / 2,
        cu::cuDevicePrimaryCtxRetain / 2,
        cu::cuDevicePrimaryCtxRelease_v2 / 1,
        cu::cuCtxSetCurrent / 1,
        cu::cuCtxGetCurrent / 1,
        cu::cuCtxSynchronize / 0,
        cu::cuCtxDestroy_v2 / 1,
        cu::cuDeviceGetName / 3,
        cu::cuMemcpy / 3,
        cu::cuDeviceGetDefaultMemPool / 2,
        cu::cuStreamCreate / 2,
        cu::cuStreamDestroy_v2 / 1,
        cu::cuStreamWaitEvent / 3,
        cu::cuStreamSynchronize / 1,
        cu::cuMemAllocAsync / 3,
        cu::cuMemAlloc_v2 / 2,
        cu::cuMemHostAlloc / 3,
        cu::cuMemFreeHost / 1,
        cu::cuMemFreeAsync / 2,
        cu::cuMemsetD8Async / 4,
        cu::cuMemsetD8_v2 / 3,
        cu::cuMemsetD16Async / 4,
        cu::cuMemsetD32Async / 4,
        cu::cuMemcpyHtoDAsync_v2 / 4,
        cu::cuMemcpyDtoHAsync_v2 / 4,
        cu::cuMemcpyDtoDAsync_v2 / 4,
        cu::cuMemGetInfo_v2 / 2,
        cu::cuModuleLoadData / 2,
        cu::cuModuleGetFunction / 3,
        cu::cuEventCreate / 2,
        cu::cuEventRecord / 2,
        cu::cuEventSynchronize / 1,
        cu::cuEventDestroy_v2 / 1,
        cu::cuEventQuery / 1,
        cu::cuLaunchKernel / 11,
        cu::cuMemPoolTrimTo / 2,
        cu::cuMemPoolGetAttribute / 3,
        cu::cuMemPoolSetAttribute / 3,
        cu::cuStreamBeginCapture_v2 / 2,
        cu::cuStreamEndCapture / 2,
        cu::cuGraphInstantiateWithFlags / 3,
        cu::cuGraphLaunch / 2,
        cu::cuGraphExecDestroy / 1,
        cu::cuGraphDestroy / 1,
        cublas::cublasCreate_v2 / 1,
        cublas::cublasDestroy_v2 / 1,
        cublas::cublasSetStream_v2 / 2,
        cublas::cublasSetWorkspace_v2 / 3,
        cublas::cublasSetMathMode / 2,
        cublas::cublasGemmEx / 19,
        cudnn::cudnnCreate / 1,
        cudnn::cudnnDestroy / 1,
        cudnn::cudnnSetStream / 2,
        cudnn::cudnnCreateTensorDescriptor / 1,
        cudnn::cudnnCreateFilterDescriptor / 1,
        cudnn::cudnnCreateConvolutionDescriptor / 1,
        cudnn::cudnnDestroyTensorDescriptor / 1,
        cudnn::cudnnDestroyFilterDescriptor / 1,
        cudnn::cudnnDestroyConvolutionDescriptor / 1,
        cudnn::cudnnSetTensor4dDescriptor / 7,
        cudnn::cudnnSetFilter4dDescriptor / 7,
        cudnn::cudnnSetConvolution2dDescriptor / 9,
        cudnn::cudnnSetConvolutionGroupCount / 2,
        cudnn::cudnnSetConvolutionMathType / 2,
        cudnn::cudnnGetConvolution2dForwardOutputDim / 7,
        cudnn::cudnnGetConvolutionForwardWorkspaceSize / 7,
        cudnn::cudnnGetConvolutionBackwardDataWorkspaceSize / 7,
        cudnn::cudnnGetConvolutionBackwardFilterWorkspaceSize / 7,
        cudnn::cudnnFindConvolutionForwardAlgorithmEx / 13,
        cudnn::cudnnFindConvolutionBackwardDataAlgorithmEx / 13,
        cudnn::cudnnFindConvolutionBackwardFilterAlgorithmEx / 13,
        cudnn::cudnnConvolutionForward / 13,
        cudnn::cudnnConvolutionBackwardData / 13,
        cudnn::cudnnConvolutionBackwardFilter / 13,
        cudnn::cudnnGetVersion / 0,
        nccl::ncclGetVersion / 1,
        nccl::ncclGetUniqueId / 1,
        nccl::ncclGetErrorString / 1,
        nccl::ncclCommInitRank / 4,
        nccl::ncclCommInitRankConfig / 5,
        nccl::ncclCommInitAll / 3,
        nccl::ncclCommGetAsyncError / 2,
        nccl::ncclCommAbort / 1,
        nccl::ncclGroupStart / 0,
        nccl::ncclGroupEnd / 0,
        nccl::ncclAllReduce / 7,
        nccl::ncclBroadcast / 7,
        nccl::ncclAllGather / 6,
    ]
}

/// An enumerator of cudarc's: its C name and value.
macro_rules! enumerators {
    ($($lib:ident::$ty:ident::$v:ident),* $(,)?) => {
        vec![$((stringify!($v), $lib::$ty::$v as i64)),*]
    };
}

/// Every cudarc enumerator our code names, and every algorithm cuDNN may answer (the disk
/// cache keeps their numbers).
fn cudarc_constants() -> Vec<(&'static str, i64)> {
    enumerators![
        cu::CUresult::CUDA_SUCCESS,
        cu::CUresult::CUDA_ERROR_INVALID_VALUE,
        cu::CUresult::CUDA_ERROR_OUT_OF_MEMORY,
        cu::CUresult::CUDA_ERROR_NOT_READY,
        cu::CUresult::CUDA_ERROR_LAUNCH_FAILED,
        cu::CUresult::CUDA_ERROR_ILLEGAL_STATE,
        cu::CUresult::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
        cu::CUevent_flags::CU_EVENT_DISABLE_TIMING,
        cu::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
        cu::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
        cu::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH,
        cu::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL,
        cu::CUstream_flags::CU_STREAM_NON_BLOCKING,
        cublas::cublasComputeType_t::CUBLAS_COMPUTE_32F,
        cublas::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        cublas::cublasMath_t::CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION,
        cublas::cublasOperation_t::CUBLAS_OP_N,
        cublas::cublasOperation_t::CUBLAS_OP_T,
        cublas::cudaDataType::CUDA_R_16BF,
        cublas::cudaDataType::CUDA_R_32F,
        cudnn::cudnnStatus_t::CUDNN_STATUS_SUCCESS,
        cudnn::cudnnStatus_t::CUDNN_STATUS_NOT_SUPPORTED,
        cudnn::cudnnDataType_t::CUDNN_DATA_FLOAT,
        cudnn::cudnnDataType_t::CUDNN_DATA_BFLOAT16,
        cudnn::cudnnTensorFormat_t::CUDNN_TENSOR_NHWC,
        cudnn::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
        cudnn::cudnnMathType_t::CUDNN_DEFAULT_MATH,
        cudnn::cudnnMathType_t::CUDNN_TENSOR_OP_MATH,
        cudnn::cudnnMathType_t::CUDNN_FMA_MATH,
        cudnn::cudnnDeterminism_t::CUDNN_NON_DETERMINISTIC,
        cudnn::cudnnDeterminism_t::CUDNN_DETERMINISTIC,
        cudnn::cudnnConvolutionFwdAlgo_t::CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
        cudnn::cudnnConvolutionFwdAlgo_t::CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
        cudnn::cudnnConvolutionFwdAlgo_t::CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
        cudnn::cudnnConvolutionFwdAlgo_t::CUDNN_CONVOLUTION_FWD_ALGO_DIRECT,
        cudnn::cudnnConvolutionFwdAlgo_t::CUDNN_CONVOLUTION_FWD_ALGO_FFT,
        cudnn::cudnnConvolutionFwdAlgo_t::CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING,
        cudnn::cudnnConvolutionFwdAlgo_t::CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD,
        cudnn::cudnnConvolutionFwdAlgo_t::CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED,
        cudnn::cudnnConvolutionBwdDataAlgo_t::CUDNN_CONVOLUTION_BWD_DATA_ALGO_0,
        cudnn::cudnnConvolutionBwdDataAlgo_t::CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
        cudnn::cudnnConvolutionBwdDataAlgo_t::CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT,
        cudnn::cudnnConvolutionBwdDataAlgo_t::CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING,
        cudnn::cudnnConvolutionBwdDataAlgo_t::CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD,
        cudnn::cudnnConvolutionBwdDataAlgo_t::CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED,
        cudnn::cudnnConvolutionBwdFilterAlgo_t::CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0,
        cudnn::cudnnConvolutionBwdFilterAlgo_t::CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
        cudnn::cudnnConvolutionBwdFilterAlgo_t::CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT,
        cudnn::cudnnConvolutionBwdFilterAlgo_t::CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3,
        cudnn::cudnnConvolutionBwdFilterAlgo_t::CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD,
        cudnn::cudnnConvolutionBwdFilterAlgo_t::CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED,
        cudnn::cudnnConvolutionBwdFilterAlgo_t::CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING,
        nccl::ncclResult_t::ncclSuccess,
        nccl::ncclResult_t::ncclInProgress,
        nccl::ncclDataType_t::ncclFloat32,
        nccl::ncclDataType_t::ncclBfloat16,
        nccl::ncclDataType_t::ncclUint64,
        nccl::ncclRedOp_t::ncclSum,
    ]
}

/// A struct of cudarc's: its C name, size and the offsets of the fields named.
macro_rules! layout {
    ($lib:ident::$ty:ident { $($f:ident),* $(,)? }) => {
        (
            stringify!($ty),
            std::mem::size_of::<$lib::$ty>(),
            vec![$((stringify!($f), std::mem::offset_of!($lib::$ty, $f))),*],
        )
    };
}

/// A search result of cuDNN's (the three directions' structs have the same fields).
macro_rules! perf_layout {
    ($ty:ident) => {
        layout!(cudnn::$ty {
            algo,
            status,
            time,
            memory,
            determinism,
            mathType,
            reserved,
        })
    };
}

fn cudarc_layouts() -> Vec<Layout> {
    vec![
        layout!(nccl::ncclUniqueId { internal }),
        layout!(nccl::ncclConfig_t {
            size,
            magic,
            version,
            blocking,
            cgaClusterSize,
            minCTAs,
            maxCTAs,
            netName,
            splitShare,
            trafficClass,
            commName,
            collnetEnable,
            CTAPolicy,
            shrinkShare,
            nvlsCTAs,
            nChannelsPerNetPeer,
            nvlinkCentricSched,
        }),
        perf_layout!(cudnnConvolutionFwdAlgoPerf_t),
        perf_layout!(cudnnConvolutionBwdDataAlgoPerf_t),
        perf_layout!(cudnnConvolutionBwdFilterAlgoPerf_t),
    ]
}

/// What the Rust side declares.
fn ours() -> Declared {
    let mut d = Declared::default();
    d.shapes(nvjpeg::declared_shapes());
    d.shapes(loaded::declared_shapes());
    d.shapes(cudarc_functions());
    d.constants(nvjpeg::declared_constants());
    d.constants(cudarc_constants());
    d.layouts(nvjpeg::declared_layouts());
    d.layouts(cudarc_layouts());
    d
}

/// The CUDA headers as the program includes them, from the folder the script unpacks them to.
fn headers(site: &Path) -> Headers<'static> {
    let cu13 = site.join("nvidia/cu13/include");
    Headers {
        prelude: "",
        includes: &["cuda.h", "cublas_api.h", "cudnn.h", "nccl.h", "nvjpeg.h"],
        include_dirs: vec![
            cu13.join("cccl"),
            cu13,
            site.join("nvidia/cudnn/include"),
            site.join("nvidia/nccl/include"),
        ],
        link: Vec::new(),
        overloaded: OVERLOADED,
    }
}

/// Functions C++ overloads (cublas_api.h adds an inline cublasGemmEx taking the older
/// cudaDataType compute type), with the C declaration's type.
const OVERLOADED: &[(&str, &str)] = &[(
    "cublasGemmEx",
    "cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, \
     const void*, const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, \
     void*, cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t)",
)];

/// Structs we may pass larger than the header's: ncclConfig_t begins with its own size, and NCCL
/// copies min(size, its own sizeof) and ignores the rest (parseCommConfig, init.cc). cudarc's is
/// NCCL 2.30's (96 bytes); 2.28's is 80.
const MAY_GROW: &[&str] = &["ncclConfig_t"];

/// One identifier of a source text.
struct Ident<'a> {
    name: &'a str,
    /// Its byte offset in the text.
    at: usize,
    /// The path segment before its `::`, if any.
    path: Option<&'a str>,
    /// Whether `(` follows.
    call: bool,
}

/// The identifiers of `text`, in order.
fn identifiers(text: &str) -> Vec<Ident<'_>> {
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out: Vec<Ident> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !word(b[i]) || (i > 0 && word(b[i - 1])) {
            i += 1;
            continue;
        }
        let at = i;
        while i < b.len() && word(b[i]) {
            i += 1;
        }
        let path = (at >= 2 && &b[at - 2..at] == b"::")
            .then(|| out.last().map(|l| l.name))
            .flatten();
        let call = text[i..].trim_start().starts_with('(');
        out.push(Ident {
            name: &text[at..i],
            at,
            path,
            call,
        });
    }
    out
}

/// What our sources (src/, but the emulated device's) name of cudarc's bindings: the functions
/// they call (`sys::f(`, cudnn.rs's `status_fn!(… => f(`) and the enumerators (`T::CUDNN_…`,
/// `T::ncclSum`, the algorithms imported bare).
fn named_in_sources() -> (Vec<String>, Vec<String>) {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let c_prefix = |v: &str| {
        ["cu", "cudnn", "cublas", "nccl"]
            .iter()
            .any(|p| v.starts_with(p) && v[p.len()..].starts_with(char::is_uppercase))
    };
    let enumerator = |v: &str| {
        ["CU_", "CUDA_", "CUDNN_", "CUBLAS_"]
            .iter()
            .any(|p| v.starts_with(p))
            || v.starts_with("nccl") && v[4..].starts_with(char::is_uppercase)
    };
    let (mut functions, mut enumerators) = (Vec::new(), Vec::new());
    for p in files
        .iter()
        .filter(|p| !p.starts_with(src.join("cuda/emu")))
    {
        let text = std::fs::read_to_string(p).unwrap();
        let has_status_fns = text.contains("status_fn!");
        for id in identifiers(&text) {
            // `=> cudnnX(` in a status_fn! entry.
            let status_fn = has_status_fns
                && id.call
                && c_prefix(id.name)
                && text[..id.at].trim_end().ends_with("=>");
            if (id.path == Some("sys") && id.call && c_prefix(id.name)) || status_fn {
                functions.push(id.name.to_string());
            } else if id.path.is_some_and(|t| {
                t != "sys" && c_prefix(t) || t.starts_with("CU") || t == "cudaDataType"
            }) && enumerator(id.name)
                || id.path.is_none() && id.name.starts_with("CUDNN_CONVOLUTION_")
            {
                enumerators.push(id.name.to_string());
            }
        }
    }
    for v in [&mut functions, &mut enumerators] {
        v.sort();
        v.dedup();
    }
    (functions, enumerators)
}

/// Every cudarc function and enumerator our sources name is in the lists above: a new call or
/// enumerator cannot go unchecked.
#[test]
fn every_cudarc_name_our_sources_use_is_checked() {
    let (functions, enumerators) = named_in_sources();
    let shapes: Vec<&str> = cudarc_functions().iter().map(|f| f.0).collect();
    let constants: Vec<&str> = cudarc_constants().iter().map(|c| c.0).collect();
    // The scan sees what it must: calls of each kind and the bare algorithm names.
    for (seen, what) in [
        ("cuGraphLaunch", &functions),
        ("cudnnSetConvolutionMathType", &functions),
        ("CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3", &enumerators),
        ("ncclSum", &enumerators),
        ("CUDA_ERROR_OUT_OF_MEMORY", &enumerators),
    ] {
        assert!(
            what.iter().any(|n| n == seen),
            "the scan missed {seen}: {what:?}"
        );
    }
    let missing: Vec<&String> = functions
        .iter()
        .filter(|f| !shapes.contains(&f.as_str()))
        .chain(
            enumerators
                .iter()
                .filter(|e| !constants.contains(&e.as_str())),
        )
        .collect();
    assert!(
        missing.is_empty(),
        "named in src/ but not checked against the headers (add them to cudarc_functions or \
         cudarc_constants): {missing:?}"
    );
}

/// `$SIMCLR_TEST_LIBRARY_NAMES`: the names the bundle's executables can look up in the CUDA
/// libraries (gpu-bundle/library-names.txt, "library name" per line, from
/// scripts/check-library-symbols.sh) are all among the functions checked. Required with
/// `SIMCLR_REQUIRE_REAL_LIBS=1`.
fn every_name_the_executables_look_up_is_checked(ours: &Declared) {
    let Some(file) = required_env(
        "SIMCLR_TEST_LIBRARY_NAMES",
        "the GPU bundle's library-names.txt",
    ) else {
        return;
    };
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", PathBuf::from(&file).display()));
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert!(names.len() > 50, "only {} names in {text:?}", names.len());
    let unchecked: Vec<&&str> = names
        .iter()
        .filter(|n| !ours.shapes.contains_key(**n))
        .collect();
    assert!(
        unchecked.is_empty(),
        "the executables can look up these functions, which are not checked against the \
         headers (add them to cudarc_functions): {unchecked:?}"
    );
    println!(
        "each of the {} names the executables look up is checked",
        names.len()
    );
}

#[test]
fn our_declarations_match_the_libraries_headers() {
    let Some(site) = real_cuda_site() else { return };
    let ours = ours();
    let theirs = theirs(&headers(&site), &ours);
    let m = mismatches(&ours, &theirs, MAY_GROW);
    let typed: usize = ours
        .shapes
        .values()
        .map(|s| s.matches("ptr<").count())
        .sum();
    println!(
        "{} functions ({typed} pointers with their pointee's class), {} constants, {} structs \
         checked against the headers under {}",
        ours.shapes.len(),
        ours.constants.len(),
        ours.layouts.len(),
        site.display()
    );
    assert!(m.is_empty(), "{} mismatches:\n{}", m.len(), m.join("\n"));
    every_name_the_executables_look_up_is_checked(&ours);

    // The comparison can fail: one argument too few, an `int *` for a `size_t *`, an enumerator
    // off by one, a struct one pointer short, each reported by name.
    let mut wrong = ours;
    let batched = wrong.shapes.get_mut("nvjpegDecodeBatched").unwrap();
    assert_eq!(*batched, "int32(ptr, ptr, ptr<ptr>, ptr<int64>, ptr, ptr)");
    *batched = batched.replace("ptr<int64>", "ptr<int32>");
    wrong.shapes.insert(
        "nvjpegDecode".into(),
        "int32(ptr, ptr, ptr, int64, int32, ptr)".into(),
    );
    *wrong.constants.get_mut("NVJPEG_OUTPUT_RGBI").unwrap() += 1;
    wrong.layouts.get_mut("nvjpegImage_t").unwrap().0 -= 8;
    let m = mismatches(&wrong, &theirs, MAY_GROW);
    assert_eq!(m.len(), 4, "{m:#?}");
    for name in [
        "nvjpegDecode:",
        "nvjpegDecodeBatched:",
        "NVJPEG_OUTPUT_RGBI",
        "nvjpegImage_t",
    ] {
        assert!(
            m.iter().any(|l| l.starts_with(name)),
            "{name} not reported: {m:#?}"
        );
    }
}
