//! Runs the `simclr` binary built for the integration tests and checks it failed cleanly.

#![allow(dead_code)]

use std::process::Command;

/// Exit code and stderr of `simclr args…`; a panic is a test failure, whatever the code.
pub fn simclr(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_simclr"))
        .args(args)
        .output()
        .expect("the simclr binary runs");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "panic: {err}");
    (out.status.code().unwrap_or(-1), err)
}
