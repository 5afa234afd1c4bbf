//! The packed batch statistics of synchronised batch norm on the GPU (kernels/moments.cu; the
//! layout and the arithmetic: [`crate::ops::moments`]). Inputs are read as f32 (converted
//! first if given in bf16); everything comes back in f32. One launch per call.

use super::MomentsKernels;
use super::{packed_len, Combined, COUNT_SPLIT};
use crate::cuda::dims::dim;
use crate::cuda::kernels::{self as k, DevPtr, DevPtrMut};
use crate::cuda::module::Launch;
use crate::cuda::storage::{empty, gpu_of};
use crate::ops::backend::Cuda;
use crate::ops::batch_norm::cuda::f32_of;
use crate::{DType, Result, Tensor};

const OP: &str = "moments";

impl MomentsKernels for Cuda {
    fn moments_pack(mean: &Tensor, var_u: &Tensor, rows: usize) -> Result<Tensor> {
        let gpu = gpu_of(mean, OP)?;
        let (mean, var_u) = (f32_of(mean)?, f32_of(var_u)?);
        let c = mean.numel();
        let out = empty(&gpu, &[1, packed_len(c)], DType::F32)?;
        let r = rows as f64;
        let (lo, hi) = ((r % COUNT_SPLIT) as f32, (r / COUNT_SPLIT).floor() as f32);
        let m1 = rows.saturating_sub(1) as f32;
        k::moments_pack(
            &gpu,
            Launch::flat(c.max(1)),
            DevPtr::of(&mean, OP)?,
            DevPtr::of(&var_u, OP)?,
            dim(c, "moments: channels")?,
            m1,
            lo,
            hi,
            DevPtrMut::of(&out, OP)?,
        )?;
        Ok(out)
    }

    fn moments_combine(all: &Tensor, local: usize) -> Result<Combined> {
        let gpu = gpu_of(all, OP)?;
        let all = f32_of(all)?;
        let (w, c) = (all.shape()[0], (all.shape()[1] - 2) / 2);
        let out = || empty(&gpu, &[c], DType::F32);
        let (mean, var, var_u) = (out()?, out()?, out()?);
        let share = empty(&gpu, &[1], DType::F32)?;
        k::moments_combine(
            &gpu,
            Launch::flat(c.max(1)),
            DevPtr::of(&all, OP)?,
            dim(w, "moments: ranks")?,
            dim(c, "moments: channels")?,
            local as f32,
            DevPtrMut::of(&mean, OP)?,
            DevPtrMut::of(&var, OP)?,
            DevPtrMut::of(&var_u, OP)?,
            DevPtrMut::of(&share, OP)?,
        )?;
        Ok(Combined {
            mean,
            var,
            var_unbiased: var_u,
            share,
        })
    }

    fn moments_scale(s: &Tensor, share: &Tensor) -> Result<Tensor> {
        let gpu = gpu_of(s, OP)?;
        let (s, share) = (f32_of(s)?, f32_of(share)?);
        let n = s.numel();
        let out = empty(&gpu, s.shape(), DType::F32)?;
        k::moments_scale(
            &gpu,
            Launch::flat(n.max(1)),
            DevPtr::of(&s, OP)?,
            DevPtr::of(&share, OP)?,
            dim(n, "moments: elements")?,
            DevPtrMut::of(&out, OP)?,
        )?;
        Ok(out)
    }
}
