//! Real-mode discovery of nvJPEG (an optional library of `src/cuda/driver/libraries.rs`): a
//! folder named in `$SIMCLR_CUDA_LIBS` holding the real `libnvjpeg.so.13` is searched first,
//! the library is preloaded from it by absolute path, and `nvjpegGetProperty` reports 13.x. No
//! GPU is needed (only `nvjpegCreate*` needs one). One test in its own process: discovery runs
//! once per process, before anything else reads `$SIMCLR_CUDA_LIBS`.
//!
//! The library comes from `$SIMCLR_TEST_NVJPEG_DIR` (a folder holding `libnvjpeg.so.13`, for
//! example `site-packages/nvidia/cu13/lib` of the `nvidia-nvjpeg` wheel), else
//! `$SIMCLR_TEST_REAL_CUDA_SITE/nvidia/cu13/lib` (the folder scripts/fetch-real-cuda-libs.sh
//! prints); without one the test prints `skipped:`, and fails when
//! `SIMCLR_REQUIRE_REAL_LIBS=1` (as CI sets).
#![cfg(feature = "cuda")]

use simclr::cuda::driver::{self, libraries, nvjpeg};
use std::path::PathBuf;

#[test]
fn simclr_cuda_libs_finds_the_real_nvjpeg() {
    if driver::mode() != driver::Mode::Real {
        println!("skipped: real-mode discovery (this process runs the emulated device)");
        return;
    }
    let required = std::env::var("SIMCLR_REQUIRE_REAL_LIBS").as_deref() == Ok("1");
    let src = std::env::var_os("SIMCLR_TEST_NVJPEG_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("SIMCLR_TEST_REAL_CUDA_SITE")
                .map(|s| PathBuf::from(s).join("nvidia/cu13/lib"))
        });
    let Some(src) = src else {
        assert!(
            !required,
            "SIMCLR_REQUIRE_REAL_LIBS=1 but neither SIMCLR_TEST_NVJPEG_DIR nor \
             SIMCLR_TEST_REAL_CUDA_SITE is set"
        );
        println!(
            "skipped: no nvJPEG folder (SIMCLR_TEST_NVJPEG_DIR or SIMCLR_TEST_REAL_CUDA_SITE)"
        );
        return;
    };
    let lib = src.join(libraries::NVJPEG_FILE);
    assert!(
        !required || lib.is_file(),
        "SIMCLR_REQUIRE_REAL_LIBS=1 but {} is missing",
        lib.display()
    );
    if !lib.is_file() {
        println!(
            "skipped: no {} (set SIMCLR_TEST_NVJPEG_DIR to the folder of the nvidia-nvjpeg wheel)",
            lib.display()
        );
        return;
    }
    // A folder of our own, so the path found is known to come from $SIMCLR_CUDA_LIBS.
    let tmp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&lib, tmp.path().join(libraries::NVJPEG_FILE)).unwrap();
    // Before any discovery in this process (the only test of this executable).
    std::env::set_var("SIMCLR_CUDA_LIBS", tmp.path());

    let d = libraries::preload();
    assert_eq!(
        d.folders.first().map(|(p, src)| (p.clone(), *src)),
        Some((tmp.path().to_path_buf(), "$SIMCLR_CUDA_LIBS"))
    );
    let f = d
        .library(libraries::NVJPEG)
        .expect("nvJPEG is among the libraries");
    assert!(f.optional);
    assert_eq!(
        f.path.as_deref(),
        Some(tmp.path().join(libraries::NVJPEG_FILE).as_path()),
        "tried {:?}, errors {:?}",
        f.tried,
        f.errors
    );
    assert!(f.errors.is_empty(), "{:?}", f.errors);
    nvjpeg::available().unwrap();
    let v = nvjpeg::version().expect("nvjpegGetProperty answers");
    assert!(v.starts_with("13."), "{v}");
    assert_eq!(v.split('.').count(), 3, "{v}");
    // The report's view agrees.
    let l = simclr::cuda::driver::loaded::libraries();
    let n = l.iter().find(|l| l.name == libraries::NVJPEG).unwrap();
    assert!(n.optional && n.missing.is_none());
    assert_eq!(n.version.as_deref(), Some(v.as_str()));
    assert!(n.path.is_some());
    // Without a GPU the handle cannot be made: EXECUTION_FAILED (a status, not a crash).
    match nvjpeg::create(nvjpeg::BACKEND_DEFAULT) {
        Ok(h) => unsafe { nvjpeg::destroy(h) }.unwrap(),
        Err(e) => {
            println!("nvjpegCreateEx without a GPU: {e}");
            assert!(format!("{e}").starts_with("NVJPEG_STATUS_"), "{e}");
        }
    }
}
