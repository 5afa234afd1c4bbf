//! Running the `simclr` binary from an integration test.

#![allow(dead_code)]

use std::process::Command;

/// Exit code, stdout and stderr of `simclr args`; a panic is a test failure of its own.
pub fn simclr<S: AsRef<std::ffi::OsStr>>(bin: &str, args: &[S]) -> (i32, String, String) {
    let out = Command::new(bin).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "panic: {err}");
    let so = String::from_utf8_lossy(&out.stdout).to_string();
    (out.status.code().unwrap_or(-1), so, err)
}

/// The binary the suites run: `$SIMCLR_BIN` (set by the GPU bundle, whose tests run far from
/// their build), else the one cargo built for these tests.
pub fn bin() -> String {
    std::env::var("SIMCLR_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_simclr").to_string())
}

/// The `--device` of a GPU suite: the emulated device in a `cuda-emu` build, the GPU otherwise.
pub fn gpu_device() -> &'static str {
    if cfg!(feature = "cuda-emu") {
        "cuda-emu"
    } else {
        "cuda"
    }
}
