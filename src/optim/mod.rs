//! Optimizers and schedules: plain SGD, LARS (SimCLRv2's optimizer), the warmup + cosine
//! learning-rate schedule, and the parameter EMA of the momentum network.

#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
pub mod ema;
pub mod lars;
pub mod schedule;
pub mod sgd;

pub use ema::{BufferRule, Ema};
pub use lars::{Lars, LarsConfig};
pub use schedule::{LrScaling, LrSchedule, Warmup};
pub use sgd::Sgd;
