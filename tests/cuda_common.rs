//! Helpers of the GPU integration tests (included with `#[path]`): the crate's own, so the
//! tests in `src/**/cuda_tests.rs` and these share one definition.
#![cfg(feature = "cuda")]
#![allow(unused_imports)]

pub use simclr::testing::augment_tolerance::{assert_views_match, augment_terms, augment_worst};
pub use simclr::testing::device::{both, check, gpu, rand, randn, DTYPES};
