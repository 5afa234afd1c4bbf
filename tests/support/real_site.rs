//! The folder of PyTorch 2.11's real CUDA libraries and headers (scripts/fetch-real-cuda-libs.sh
//! prints it), for the tests that check our use of them without a GPU.

#![allow(dead_code)]

use std::ffi::OsString;
use std::path::PathBuf;

/// `$SIMCLR_TEST_REAL_CUDA_SITE`; without it, prints `skipped:` and returns None, or fails when
/// `SIMCLR_REQUIRE_REAL_LIBS=1` (as CI sets).
pub fn real_cuda_site() -> Option<PathBuf> {
    required_env(
        "SIMCLR_TEST_REAL_CUDA_SITE",
        "the folder scripts/fetch-real-cuda-libs.sh prints",
    )
    .map(PathBuf::from)
}

/// The environment variable `var` (`what` says what it names); without it, prints `skipped:`
/// and returns None, or fails when `SIMCLR_REQUIRE_REAL_LIBS=1`.
pub fn required_env(var: &str, what: &str) -> Option<OsString> {
    let value = std::env::var_os(var);
    if value.is_none() {
        assert!(
            std::env::var("SIMCLR_REQUIRE_REAL_LIBS").as_deref() != Ok("1"),
            "SIMCLR_REQUIRE_REAL_LIBS=1 but {var} is not set ({what})"
        );
        println!("skipped: {var} is not set ({what})");
    }
    value
}
