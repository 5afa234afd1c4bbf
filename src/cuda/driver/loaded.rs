//! What is loaded, for the library report (`simclr info --device cuda`): the file and the
//! version of the driver, cuBLAS, cuDNN, NCCL and (optional) nvJPEG in this process. Versions
//! come from each library's own query (`cuDriverGetVersion`, `cublasGetProperty`,
//! `cudnnGetVersion`, `ncclGetVersion`, `nvjpegGetProperty`), looked up with `dlsym` on the
//! already-loaded object (nothing new loads, except NCCL, which is opened by name as cudarc
//! would, and nvJPEG, which is tried by name when discovery did not find it).

use super::libraries::{loaded, mapped_path, open_by_name, symbol, Handle};
use crate::abi::shape_of;
use std::ffi::c_int;
use std::path::PathBuf;

/// One library as this process sees it.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub name: &'static str,
    pub path: Option<PathBuf>,
    pub version: Option<String>,
    /// Optional (nvJPEG): its absence is reported, not a failure.
    pub optional: bool,
    /// Why it is not usable, when it is not (optional libraries).
    pub missing: Option<String>,
}

/// `status f(libraryPropertyType, int *)`: cublasGetProperty.
type PropertyQuery = unsafe extern "C" fn(c_int, *mut c_int) -> c_int;
/// `size_t f(void)`: cudnnGetVersion.
type SizeQuery = unsafe extern "C" fn() -> usize;
/// `status f(int *)`: cuDriverGetVersion, ncclGetVersion.
type IntQuery = unsafe extern "C" fn(*mut c_int) -> c_int;

/// Each version query's symbol and the shape of the signature we call it with (`abi::Shape`),
/// for tests/library_headers.rs.
pub fn declared_shapes() -> Vec<(&'static str, String)> {
    vec![
        ("cublasGetProperty", shape_of::<PropertyQuery>()),
        ("cudnnGetVersion", shape_of::<SizeQuery>()),
        ("cuDriverGetVersion", shape_of::<IntQuery>()),
        ("ncclGetVersion", shape_of::<IntQuery>()),
    ]
}

/// The libraries, in report order (real mode; call after the probe loaded the driver).
pub fn libraries() -> Vec<Loaded> {
    vec![driver(), cublas(), cudnn(), nccl(), nvjpeg()]
}

fn nvjpeg() -> Loaded {
    let missing = super::nvjpeg::available().err();
    Loaded {
        name: super::libraries::NVJPEG,
        path: mapped_path("libnvjpeg.so"),
        version: super::nvjpeg::version(),
        optional: true,
        missing,
    }
}

fn driver() -> Loaded {
    let version = loaded("libcuda.so.1")
        .or_else(|| loaded("libcuda.so"))
        .and_then(|h| int_query(h, "cuDriverGetVersion"))
        .map(|v| format!("{}.{} (CUDA driver API {v})", v / 1000, (v % 1000) / 10));
    Loaded {
        name: "driver",
        path: mapped_path("libcuda.so"),
        version,
        optional: false,
        missing: None,
    }
}

fn cublas() -> Loaded {
    let version = loaded("libcublas.so.13").and_then(|h| {
        let f = symbol(h, "cublasGetProperty")?;
        // SAFETY: cublasStatus_t cublasGetProperty(libraryPropertyType, int *); 0, 1, 2 are
        // MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL.
        let f: PropertyQuery = unsafe { std::mem::transmute(f) };
        let mut v = [0 as c_int; 3];
        for (i, slot) in v.iter_mut().enumerate() {
            if unsafe { f(i as c_int, slot) } != 0 {
                return None;
            }
        }
        Some(format!("{}.{}.{}", v[0], v[1], v[2]))
    });
    Loaded {
        name: "cuBLAS",
        path: mapped_path("libcublas.so"),
        version,
        optional: false,
        missing: None,
    }
}

fn cudnn() -> Loaded {
    let version = loaded("libcudnn.so.9").and_then(|h| {
        let f = symbol(h, "cudnnGetVersion")?;
        // SAFETY: size_t cudnnGetVersion(void).
        let f: SizeQuery = unsafe { std::mem::transmute(f) };
        let v = unsafe { f() };
        Some(format!(
            "{}.{}.{} ({v})",
            v / 10000,
            (v % 10000) / 100,
            v % 100
        ))
    });
    Loaded {
        name: "cuDNN",
        path: mapped_path("libcudnn.so"),
        version,
        optional: false,
        missing: None,
    }
}

fn nccl() -> Loaded {
    // cudarc opens NCCL on first use only; open it the way cudarc would (its first name).
    let h = loaded("libnccl.so.2").or_else(|| open_by_name("libnccl.so").ok());
    let version = h.and_then(|h| int_query(h, "ncclGetVersion")).map(|v| {
        // NCCL 2.9 and later: major·10000 + minor·100 + patch.
        format!("{}.{}.{} ({v})", v / 10000, (v % 10000) / 100, v % 100)
    });
    Loaded {
        name: "NCCL",
        path: mapped_path("libnccl.so"),
        version,
        optional: false,
        missing: None,
    }
}

/// Calls `int f(int *)` (a CUDA-style version query) and returns the value on success.
fn int_query(handle: Handle, name: &str) -> Option<i32> {
    let f = symbol(handle, name)?;
    // SAFETY: every query named here has the signature `status f(int *)`, status 0 on success.
    let f: IntQuery = unsafe { std::mem::transmute(f) };
    let mut v: c_int = 0;
    (unsafe { f(&mut v) } == 0).then_some(v)
}
