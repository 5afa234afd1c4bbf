//! `simclr`: a from-scratch training engine for SimCLRv2.
//!
//! Layers, from the bottom: [`tensor`] (shapes, dtypes, devices, storage), [`ops`] (forward,
//! backward and kernels of every op, CPU reference beside CUDA), [`autograd`] (an explicit
//! tape), [`params`] (named parameters), [`nn`] (modules and the SK-ResNet family),
//! [`checkpoint`] (safetensors I/O); [`comm`] holds the collectives of data-parallel training over several ranks.

pub mod abi;
pub mod autograd;
pub mod checkpoint;
pub mod cli;
pub mod comm;
pub mod conv_policy;
pub mod data;
pub mod device_select;
pub mod error;
pub mod interop;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod params;
pub mod profile;
pub mod rng;
pub mod tensor;
#[doc(hidden)]
pub mod testing;
pub mod train;

#[cfg(feature = "cuda")]
pub mod cuda;

pub use error::{Error, Result};
pub use rng::Rng;
pub use tensor::{DType, Device, DeviceRequest, Element, Float, Tensor};

/// Whether a CUDA device can be used by this build on this machine.
pub fn cuda_available() -> bool {
    #[cfg(feature = "cuda")]
    {
        cuda::is_available()
    }
    #[cfg(not(feature = "cuda"))]
    {
        false
    }
}

/// How many CUDA devices this process sees (0 when CUDA cannot be used or is not built in).
pub fn cuda_device_count() -> usize {
    #[cfg(feature = "cuda")]
    {
        cuda::device_count()
    }
    #[cfg(not(feature = "cuda"))]
    {
        0
    }
}

/// Why CUDA cannot be used, for error messages.
pub fn cuda_unavailable_reason() -> String {
    #[cfg(feature = "cuda")]
    {
        cuda::unavailable_reason()
    }
    #[cfg(not(feature = "cuda"))]
    {
        "this binary was built without the `cuda` feature (rebuild with --features cuda)"
            .to_string()
    }
}
