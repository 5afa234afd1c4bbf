//! Every CUDA driver, cuBLAS and cuDNN failure becomes `Error::Cuda`, naming the call.

use crate::Error;

pub(crate) trait CudaCall<T> {
    /// Maps the library's error to `Error::Cuda("<call>: <error>")`.
    fn call(self, call: &str) -> crate::Result<T>;
}

impl<T, E: std::fmt::Debug> CudaCall<T> for std::result::Result<T, E> {
    fn call(self, call: &str) -> crate::Result<T> {
        self.map_err(|e| Error::Cuda(format!("{call}: {e:?}")))
    }
}

pub(crate) fn cuda_err(msg: impl Into<String>) -> Error {
    Error::Cuda(msg.into())
}
