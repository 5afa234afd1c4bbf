//! Cross-entropy fused with its gradient (kernels/loss.cu).

use super::{i32a, row_threads};
use crate::cuda::alloc::DeviceBuffer;
use crate::cuda::driver::cu;
use crate::cuda::error::CudaCall;
use crate::cuda::module::{Arg, Launch};
use crate::cuda::storage::{empty, gpu_of, ptr};
use crate::{Error, Result, Tensor};

/// Returns (mean loss [], gradient of the mean loss w.r.t. the logits).
pub fn cross_entropy(logits: &Tensor, labels: &[usize]) -> Result<(Tensor, Tensor)> {
    let op = "cross_entropy";
    let (n, k) = logits.dims2(op)?;
    let gpu = gpu_of(logits, op)?;
    let labels32: Vec<i32> = labels
        .iter()
        .map(|&l| i32::try_from(l).map_err(|_| Error::shape(op, format!("label {l} too large"))))
        .collect::<Result<_>>()?;
    let lab = DeviceBuffer::alloc(&gpu, 4 * n)?;
    unsafe { cu::memcpy_htod_async(lab.ptr(), &labels32, gpu.cu_stream()) }
        .call("cuMemcpyHtoDAsync(labels)")?;
    let row_loss = DeviceBuffer::alloc(&gpu, 4 * n)?;
    let grad = empty(&gpu, logits.shape(), logits.dtype())?;
    let loss = empty(&gpu, &[], logits.dtype())?;
    let args = [
        ptr(logits, op)?,
        Arg::Ptr(lab.ptr()),
        i32a(n),
        i32a(k),
        Arg::Ptr(row_loss.ptr()),
        ptr(&grad, op)?,
    ];
    gpu.launch_typed(op, logits.dtype(), Launch::rows(n, row_threads(k)), &args)?;
    let args = [Arg::Ptr(row_loss.ptr()), i32a(n), ptr(&loss, op)?];
    gpu.launch_typed(
        "cross_entropy_mean",
        logits.dtype(),
        Launch::rows(1, 256),
        &args,
    )?;
    // The labels' host vector must outlive its copy.
    gpu.synchronize()?;
    Ok((loss, grad))
}
