//! CUDA backend (feature `cuda`): one context and one stream per GPU, a stream-ordered caching
//! allocator, cuDNN convolutions, cuBLAS products and our kernels (`kernels/*.cu`, compiled by
//! build.rs) for everything else. Libraries are loaded at run time: a CUDA build starts on a
//! machine without CUDA, and `is_available()` then says false and `unavailable_reason()` why.
//!
//! Dtypes: the GPU stores f32 and bf16. Mixed precision keeps fp32 master weights and runs
//! activations, convolutions and GEMMs in bf16 with fp32 accumulation; batch-norm statistics
//! and parameter gradients (mean, invstd, var, dgamma, dbeta) are always f32.

pub mod algo_cache;
pub(crate) mod alloc;
pub(crate) mod blas;
pub(crate) mod conv_algo;
pub(crate) mod device;
pub mod dims;
pub(crate) mod dnn;
pub mod driver;
#[cfg(feature = "cuda-emu")]
pub mod emu;
pub(crate) mod error;
mod fill;
pub mod graph;
pub mod groups;
pub mod image_groups;
pub mod kernel_resources;
pub mod kernels;
pub mod memory;
pub(crate) mod module;
pub mod report;
mod runtime;
pub mod staging;
pub(crate) mod storage;
pub mod traffic_floor;

pub use device::{device_count, gpu, is_available, unavailable_reason, Gpu};
pub use fill::full;
pub use storage::{cast, overwrite, upload, CudaStorage};
