//! Optimizers and schedules.

pub mod sgd;

pub use sgd::Sgd;
