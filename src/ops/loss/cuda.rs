//! Cross-entropy fused with its gradient (kernels/loss.cu).

use super::LossKernels;
use crate::cuda::alloc::DeviceBuffer;
use crate::cuda::dims::dim;
use crate::cuda::driver::cu;
use crate::cuda::error::CudaCall;
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut};
use crate::cuda::module::row_threads;
use crate::cuda::module::Launch;
use crate::cuda::storage::{empty, gpu_of};
use crate::ops::backend::Cuda;
use crate::{Error, Result, Tensor};

impl LossKernels for Cuda {
    /// Returns (mean loss [], gradient of the mean loss w.r.t. the logits).
    fn cross_entropy_forward(logits: &Tensor, labels: &[usize]) -> Result<(Tensor, Tensor)> {
        let op = "cross_entropy";
        let (n, k) = logits.dims2(op)?;
        let gpu = gpu_of(logits, op)?;
        let labels32: Vec<i32> = labels
            .iter()
            .map(|&l| {
                i32::try_from(l).map_err(|_| Error::shape(op, format!("label {l} too large")))
            })
            .collect::<Result<_>>()?;
        let lab = DeviceBuffer::alloc(&gpu, 4 * n)?;
        unsafe { cu::memcpy_htod_async(lab.ptr(), &labels32, gpu.cu_stream()) }
            .call("cuMemcpyHtoDAsync(labels)")?;
        let row_loss = DeviceBuffer::alloc(&gpu, 4 * n)?;
        let grad = empty(&gpu, logits.shape(), logits.dtype())?;
        let loss = empty(&gpu, &[], logits.dtype())?;
        // n int32 labels; n f32 row losses, written by the first kernel and read by the second.
        let lab = unsafe { DevPtr::<i32>::from_raw(lab.ptr()) };
        let row_loss = unsafe { DevPtrMut::<f32>::from_raw(row_loss.ptr()) };
        let (n32, k32) = (dim::<i32>(n, op)?, dim::<i32>(k, op)?);
        let cfg = Launch::rows(n, row_threads(k));
        with_dtype!(logits.dtype(), op, T => {
            let (x, g) = (DevPtr::<T>::of(logits, op)?, DevPtrMut::of(&grad, op)?);
            k::cross_entropy(&gpu, cfg, x, lab, n32, k32, row_loss, g)?;
            let out = DevPtrMut::<T>::of(&loss, op)?;
            k::cross_entropy_mean(&gpu, Launch::rows(1, 256), row_loss.as_const(), n32, out)
        })?;
        // The labels' host vector must outlive its copy.
        gpu.synchronize()?;
        Ok((loss, grad))
    }
}
