//! CUDA library discovery and preloading (src/cuda/driver/libraries.rs) against fake libraries
//! built here with `cc`: a PyTorch-like `site-packages` (found through the real python3's
//! `sys.path`, via PYTHONPATH) holding `nvidia/cu13/lib/libcublas.so.13` and
//! `nvidia/nccl/lib/libnccl.so.2`. Checks that a later `dlopen` by the names cudarc uses finds
//! them: `libcublas.so.13` through the soname of the preloaded object, `libnccl.so` (never
//! `.so.2` in cudarc's list) only through the build's soname stub. One test in its own process:
//! loads are process-wide and discovery runs once.
#![cfg(feature = "cuda")]

use simclr::cuda::driver::{libraries, loaded};
use std::path::Path;
use std::process::Command;

/// Builds a shared library `dir/file` with soname `file` from C source `src`.
fn fake_lib(dir: &Path, file: &str, src: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let c = dir.join(format!("{file}.c"));
    std::fs::write(&c, src).unwrap();
    let out = Command::new("cc")
        .args(["-shared", "-fPIC"])
        .arg(format!("-Wl,-soname,{file}"))
        .arg("-o")
        .arg(dir.join(file))
        .arg(&c)
        .output()
        .expect("this test needs a C compiler `cc` on PATH");
    assert!(
        out.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn preloaded_wheel_libraries_answer_cudarcs_names() {
    for name in ["libnccl.so", "libnccl.so.2", "libcublas.so.13"] {
        assert!(
            libraries::open_by_name(name).is_err(),
            "this machine already has {name}: the test cannot tell our loading from the system's"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site-packages");
    let cu13 = site.join("nvidia").join("cu13").join("lib");
    let nccl = site.join("nvidia").join("nccl").join("lib");
    fake_lib(
        &cu13,
        "libcublas.so.13",
        "int cublasGetProperty(int t, int *v) { *v = t == 0 ? 13 : t == 1 ? 1 : 7; return 0; }",
    );
    fake_lib(
        &nccl,
        "libnccl.so.2",
        "int ncclGetVersion(int *v) { *v = 22703; return 0; }",
    );
    assert_eq!(
        libraries::wheel_lib_folders(&site),
        vec![cu13.clone(), nccl.clone()]
    );

    // The defect this fixes: the real NCCL loaded by path still leaves cudarc's name unresolved.
    libraries::dlopen_global(&nccl.join("libnccl.so.2")).unwrap();
    assert!(libraries::open_by_name("libnccl.so").is_err());

    // Discovery through python3's sys.path (PYTHONPATH is read by the child python). The
    // python runs with -S so that a real PyTorch install on this machine (its own nvidia/*/lib
    // wheels) stays out of the search: only the fake site-packages is seen.
    let isolated = tmp.path().join("python3-isolated");
    std::fs::write(&isolated, "#!/bin/sh\nexec python3 -S \"$@\"\n").unwrap();
    std::fs::set_permissions(
        &isolated,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::env::set_var("SIMCLR_PYTHON", &isolated);
    std::env::set_var("PYTHONPATH", &site);
    std::env::remove_var("SIMCLR_CUDA_LIBS");
    let d = libraries::preload();
    println!("{d:#?}");
    let find = |n: &str| d.libraries.iter().find(|f| f.name == n).unwrap();
    assert_eq!(
        find("cuBLAS").path.as_deref(),
        Some(cu13.join("libcublas.so.13").as_path())
    );
    assert_eq!(
        find("NCCL").path.as_deref(),
        Some(nccl.join("libnccl.so.2").as_path())
    );
    assert_eq!(find("NCCL").stub, Some("libnccl.so"), "{:?}", find("NCCL"));
    assert!(find("NCCL").errors.is_empty(), "{:?}", find("NCCL").errors);
    // cuDNN is absent: every folder searched was tried, in order, and nothing loaded.
    let cudnn = find("cuDNN");
    assert!(cudnn.path.is_none());
    assert!(cudnn.tried.iter().any(|p| p == &cu13.join("libcudnn.so.9")));

    // What cudarc will do: dlopen by its names.
    let h = libraries::open_by_name("libnccl.so").expect("the stub answers libnccl.so");
    assert!(libraries::symbol(h, "ncclGetVersion").is_some());
    libraries::open_by_name("libcublas.so.13").expect("the soname answers libcublas.so.13");
    // cudarc's own presence check walks its candidate list.
    assert!(simclr::cuda::driver::nccl::is_present());

    let libs = loaded::libraries();
    let get = |n: &str| libs.iter().find(|l| l.name == n).unwrap().clone();
    assert_eq!(get("NCCL").version.as_deref(), Some("2.27.3 (22703)"));
    assert_eq!(
        get("NCCL").path.as_deref(),
        Some(nccl.join("libnccl.so.2").as_path())
    );
    assert_eq!(get("cuBLAS").version.as_deref(), Some("13.1.7"));
    assert!(
        get("driver").path.is_none(),
        "no NVIDIA driver expected here"
    );
}
