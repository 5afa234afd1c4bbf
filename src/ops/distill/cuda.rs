//! Distillation loss fused with its gradient on the GPU (kernels/distill.cu), one block per
//! row. Semantics: src/ops/distill.

use super::DistillKernels;
use super::DistillSpec;
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

const OP: &str = "distill";

impl DistillKernels for Cuda {
    /// Returns (batch-mean loss [], gradient w.r.t. the student logits), in the student's dtype.
    fn distill_forward(
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
                        i32::try_from(y)
                            .map_err(|_| Error::shape(OP, format!("label {y} too large")))
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
        // b int32 labels (null without labels); b f32 row losses, written then read.
        let labp = unsafe { DevPtr::<i32>::from_raw(lab.as_ref().map_or(0, |l| l.ptr())) };
        let row_loss = unsafe { DevPtrMut::<f32>::from_raw(row_loss.ptr()) };
        let (b32, c32) = (dim::<i32>(b, OP)?, dim::<i32>(c, OP)?);
        let (alpha, tau) = (spec.alpha as f32, spec.tau as f32);
        let cfg = Launch::rows(b, row_threads(c));
        with_dtype!(student.dtype(), OP, T => {
            let (s, t) = (DevPtr::<T>::of(student, OP)?, DevPtr::of(teacher, OP)?);
            let g = DevPtrMut::of(&grad, OP)?;
            k::distill(&gpu, cfg, s, t, labp, b32, c32, alpha, tau, row_loss, g)?;
            let out = DevPtrMut::<T>::of(&loss, OP)?;
            k::distill_mean(&gpu, Launch::rows(1, 256), row_loss.as_const(), b32, out)
        })?;
        Ok((loss, grad))
    }
}
