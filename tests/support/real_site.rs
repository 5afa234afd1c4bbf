//! The folder of PyTorch 2.11's real CUDA libraries and headers (scripts/fetch-real-cuda-libs.sh
//! prints it), for the tests that check our use of them without a GPU.

use std::path::PathBuf;

/// `$SIMCLR_TEST_REAL_CUDA_SITE`; without it, prints `skipped:` and returns None, or fails when
/// `SIMCLR_REQUIRE_REAL_LIBS=1` (as CI sets).
pub fn real_cuda_site() -> Option<PathBuf> {
    let site = std::env::var_os("SIMCLR_TEST_REAL_CUDA_SITE").map(PathBuf::from);
    if site.is_none() {
        assert!(
            std::env::var("SIMCLR_REQUIRE_REAL_LIBS").as_deref() != Ok("1"),
            "SIMCLR_REQUIRE_REAL_LIBS=1 but SIMCLR_TEST_REAL_CUDA_SITE is not set \
             (the folder scripts/fetch-real-cuda-libs.sh prints)"
        );
        println!(
            "skipped: SIMCLR_TEST_REAL_CUDA_SITE is not set (scripts/fetch-real-cuda-libs.sh)"
        );
    }
    site
}
