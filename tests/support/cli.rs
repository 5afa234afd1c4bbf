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
