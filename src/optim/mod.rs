//! Optimizers and schedules: plain SGD, LARS (SimCLRv2's optimizer), the warmup + cosine
//! learning-rate schedule, and the parameter EMA of the momentum network.

#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
pub mod ema;
pub mod lars;
#[cfg(not(feature = "cuda"))]
mod no_device_lr;
pub mod schedule;
pub mod sgd;

#[cfg(feature = "cuda")]
pub use cuda::DeviceLr;
pub use ema::{BufferRule, Ema};
pub use lars::{Lars, LarsConfig};
#[cfg(not(feature = "cuda"))]
pub use no_device_lr::DeviceLr;
pub use schedule::{LrScaling, LrSchedule, Warmup};
pub use sgd::Sgd;
