//! One error type for the whole crate: every failure names what was being done and what was
//! expected, so the binary can print it and exit non-zero instead of panicking.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An op got operands whose shapes do not fit together.
    #[error("{op}: shape mismatch: {msg}")]
    Shape { op: &'static str, msg: String },

    /// An op got operands of different or unsupported dtypes.
    #[error("{op}: dtype error: {msg}")]
    DType { op: &'static str, msg: String },

    /// Operands live on different devices, or the device cannot run the op.
    #[error("{op}: device error: {msg}")]
    Device { op: &'static str, msg: String },

    /// A model name that does not parse or describes no supported architecture.
    #[error("unknown model '{name}': {msg}")]
    UnknownModel { name: String, msg: String },

    /// A configuration that cannot be run (bad flag values, impossible combinations).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A checkpoint that does not match the model it is loaded into.
    #[error("checkpoint {path}: {msg}")]
    Checkpoint { path: PathBuf, msg: String },

    /// A data file that is missing, truncated or corrupt.
    #[error("dataset {path}: {msg}")]
    Data { path: PathBuf, msg: String },

    /// An I/O failure, with the path it concerned.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Autograd misuse: backward of a non-scalar, a variable from another tape, etc.
    #[error("autograd: {0}")]
    Autograd(String),

    /// A configuration that does not fit in the device's (or the host's) memory.
    #[error("out of memory: {0}")]
    OutOfMemory(String),

    /// Training produced a non-finite loss, gradient or weight.
    #[error("training diverged: {0}")]
    Diverged(String),

    /// SIGINT or SIGTERM: the step finished and a resumable state was written.
    #[error("interrupted: {msg}")]
    Interrupted { signal: i32, msg: String },

    /// A failure inside the CUDA runtime, cuBLAS, cuDNN or one of our kernels.
    #[error("cuda: {0}")]
    Cuda(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape {
            op,
            msg: msg.into(),
        }
    }
    pub fn dtype(op: &'static str, msg: impl Into<String>) -> Self {
        Error::DType {
            op,
            msg: msg.into(),
        }
    }
    pub fn device(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Device {
            op,
            msg: msg.into(),
        }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
