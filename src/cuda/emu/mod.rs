//! The emulated CUDA device (feature `cuda-emu`): what `src/cuda/driver` calls instead of the
//! real libraries when the process runs in emulated mode.
//!
//! - `cu`: devices, checked device memory, module loading and kernel launches of our
//!   `kernels/*.cu` compiled for the host (see `emu/` at the repository root);
//! - `cublas`, `cudnn`, `nccl`, `nvjpeg`: the library calls we make, with their arguments checked as the
//!   real libraries document, computed with numerics of their own (a GEMM and a direct
//!   convolution summed in f64, sharing no code with the ops' CPU kernels);
//! - `order`: stream order (vector clocks of streams and events; the runtime checks accesses);
//! - `graph`: stream capture (work recorded instead of run) and graph launches (replayed);
//! - `elems`: reading and writing checked device ranges as f32/f64/bf16/f16 elements;
//! - `registry`: live handles, descriptors and communicators (unknown or destroyed ones refused).

pub mod cu;
pub mod cublas;
pub mod cudnn;
pub mod elems;
pub mod event;
mod ffi;
pub mod graph;
pub mod memory;
pub mod nccl;
pub mod nvjpeg;
pub mod order;
pub mod pinned;
pub mod registry;
