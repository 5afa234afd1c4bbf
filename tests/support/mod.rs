//! Helpers shared by integration tests (a subfolder, so not a test target of its own).

pub mod mpi;
pub mod scratch;
pub mod tiny_run;
