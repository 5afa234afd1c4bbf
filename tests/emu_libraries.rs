//! The emulated cuDNN, cuBLAS and NCCL (feature `cuda-emu`), called directly with buffers of
//! emulated device memory (allocated, uploaded and downloaded through the driver API, so every
//! range the libraries check is a real allocation): numerics against the CPU reference in f64 on fresh random inputs
//! (f32 and bf16), every documented refusal with its status, and NCCL collectives across ranks
//! on threads.

#![cfg(feature = "cuda-emu")]

#[path = "emu_libraries/blas.rs"]
mod blas;
#[path = "emu_libraries/common.rs"]
mod common;
#[path = "support/cudnn_descriptor_cases.rs"]
mod cudnn_descriptor_cases;
#[path = "emu_libraries/dnn.rs"]
mod dnn;
#[path = "emu_libraries/dnn_workspace.rs"]
mod dnn_workspace;
#[path = "emu_libraries/nccl.rs"]
mod nccl;
