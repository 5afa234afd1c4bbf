//! Distillation loss fused with its gradient on the GPU (kernels/distill.cu), one block per
//! row. Semantics: src/ops/distill.

use super::alloc::DeviceBuffer;
use super::error::CudaCall;
use super::module::{Arg, Launch};
use super::ops::{i32a, row_threads};
use super::storage::{empty, gpu_of, ptr};
use crate::cuda::driver::cu;
use crate::ops::distill::DistillSpec;
use crate::{Error, Result, Tensor};

const OP: &str = "distill";

/// Returns (batch-mean loss [], gradient w.r.t. the student logits), in the student's dtype.
pub fn forward(
    student: &Tensor,
    teacher: &Tensor,
    labels: Option<&[usize]>,
    spec: DistillSpec,
) -> Result<(Tensor, Tensor)> {
    let (b, c) = student.dims2(OP)?;
    let gpu = gpu_of(student, OP)?;
    // Labels go up as int32; the buffer lives until the synchronisation below.
    let lab = match labels {
        Some(l) => {
            let l32: Vec<i32> = l
                .iter()
                .map(|&y| {
                    i32::try_from(y).map_err(|_| Error::shape(OP, format!("label {y} too large")))
                })
                .collect::<Result<_>>()?;
            let buf = DeviceBuffer::alloc(&gpu, 4 * b)?;
            unsafe { cu::memcpy_htod_async(buf.ptr(), &l32, gpu.cu_stream()) }
                .call("cuMemcpyHtoDAsync(labels)")?;
            // The host vector must outlive its copy.
            gpu.synchronize()?;
            Some(buf)
        }
        None => None,
    };
    let row_loss = DeviceBuffer::alloc(&gpu, 4 * b)?;
    let grad = empty(&gpu, student.shape(), student.dtype())?;
    let loss = empty(&gpu, &[], student.dtype())?;
    let args = [
        ptr(student, OP)?,
        ptr(teacher, OP)?,
        Arg::Ptr(lab.as_ref().map_or(0, |l| l.ptr())),
        i32a(b),
        i32a(c),
        Arg::F32(spec.alpha as f32),
        Arg::F32(spec.tau as f32),
        Arg::Ptr(row_loss.ptr()),
        ptr(&grad, OP)?,
    ];
    gpu.launch_typed(OP, student.dtype(), Launch::rows(b, row_threads(c)), &args)?;
    let args = [Arg::Ptr(row_loss.ptr()), i32a(b), ptr(&loss, OP)?];
    gpu.launch_typed("distill_mean", student.dtype(), Launch::rows(1, 256), &args)?;
    Ok((loss, grad))
}
