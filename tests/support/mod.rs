//! Helpers shared by integration tests (a subfolder, so not a test target of its own).

pub mod bin;
pub mod cli;
pub mod mpi;
pub mod scratch;
pub mod tf_bundle;
pub mod tiny_run;
