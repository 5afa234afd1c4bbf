//! Batch norm over the last dimension (kernels/batch_norm.cu for the reductions,
//! kernels/bn_act.cu for the elementwise passes, which also serve BN + (add +) ReLU through
//! src/ops/bn_act/cuda.rs). x and dy may be f32 or bf16; gamma, beta and running statistics are read
//! as f32 (converted first if given in bf16), and the statistics (mean, invstd, unbiased var)
//! and parameter gradients come back as f32.
//!
//! The backward lives in src/ops/batch_norm/cuda_backward.rs.
//!
//! The reductions read x in the channel groups of the elementwise passes (8 channels and one
//! 16-byte load per thread when C % 8 == 0, src/cuda/groups.rs).
//!
//! Launches: a train forward is 2 (statistics with their finish and the running averages, then
//! the apply), a backward 2 (gradient sums with their finish, then the apply); each reduction
//! also zeroes its tickets with one memset. Bytes per launch: src/cuda/traffic_floor.rs.

use crate::cuda::alloc::DeviceBuffer;
use crate::cuda::device::Gpu;
use crate::cuda::dims::dim;
use crate::cuda::groups::{chunks, col_blocks, group_launch, reduce_launch};
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut};
use crate::cuda::module::Launch;
use crate::cuda::storage::{cast, empty, gpu_of};
use crate::cuda::traffic_floor::{self as tf, Family};
use crate::{DType, Result, Tensor};
use std::sync::Arc;

use super::cuda_backward;
use super::BatchNormKernels;
use crate::ops::backend::Cuda;

const OP: &str = "batch_norm";

pub(crate) fn f32_of(t: &Tensor) -> Result<Tensor> {
    cast(t, DType::F32)
}

/// Running averages to update with a batch's statistics: (mean, var, momentum), f32.
pub type Running<'a> = (&'a Tensor, &'a Tensor, f64);

/// Scratch of a one-launch reduction over [m, c]: fp32 partials (2·g·c) and one zeroed ticket
/// per column of blocks, alive until the kernel is queued (the allocator is stream-ordered).
pub(super) struct Scratch {
    part: DeviceBuffer,
    done: DeviceBuffer,
    pub g: usize,
    pub rows: usize,
}

impl Scratch {
    pub fn new(gpu: &Arc<Gpu>, m: usize, c: usize) -> Result<Self> {
        let (g, rows) = chunks(m, c);
        let part = DeviceBuffer::alloc(gpu, 4 * 2 * g * c)?;
        let done = DeviceBuffer::zeroed(gpu, 4 * col_blocks(c))?;
        Ok(Scratch {
            part,
            done,
            g,
            rows,
        })
    }
    pub fn launch(&self, c: usize) -> Launch {
        reduce_launch(c, self.g)
    }
    /// # Safety
    /// The pointers are used by one kernel queued while `self` lives.
    pub unsafe fn ptrs(&self) -> (DevPtrMut<f32>, DevPtrMut<u32>) {
        (
            DevPtrMut::from_raw(self.part.ptr()),
            DevPtrMut::from_raw(self.done.ptr()),
        )
    }
}

pub(super) fn shape_of(x: &Tensor) -> Result<(usize, usize, i64, i32)> {
    let c = x.last_dim();
    let m = x.numel() / c.max(1);
    Ok((
        m,
        c,
        dim(m, "batch_norm: rows")?,
        dim(c, "batch_norm: channels")?,
    ))
}

/// The batch statistics (mean, invstd, unbiased variance) in one launch, and, given running
/// averages, their updated values from the same launch.
#[allow(clippy::type_complexity)]
pub fn stats_running(
    x: &Tensor,
    eps: f64,
    running: Option<Running>,
) -> Result<(Tensor, Tensor, Tensor, Option<(Tensor, Tensor)>)> {
    let gpu = gpu_of(x, OP)?;
    let (m, c, m64, c32) = shape_of(x)?;
    let out = || empty(&gpu, &[c], DType::F32);
    let (mean, invstd, var_u) = (out()?, out()?, out()?);
    let new = running
        .map(|_| Ok::<_, crate::Error>((out()?, out()?)))
        .transpose()?;
    let run = running.map(|(rm, rv, mom)| Ok::<_, crate::Error>((f32_of(rm)?, f32_of(rv)?, mom)));
    let run = run.transpose()?;
    let s = Scratch::new(&gpu, m, c)?;
    let (part, done) = unsafe { s.ptrs() };
    let rows = dim(s.rows, "batch_norm: rows")?;
    let (rm, rv) = (
        DevPtr::of_opt(run.as_ref().map(|r| &r.0), OP)?,
        DevPtr::of_opt(run.as_ref().map(|r| &r.1), OP)?,
    );
    let mom = run.as_ref().map_or(0.0, |r| r.2) as f32;
    let (nm, nv) = (
        DevPtrMut::of_opt(new.as_ref().map(|n| &n.0), OP)?,
        DevPtrMut::of_opt(new.as_ref().map(|n| &n.1), OP)?,
    );
    let (mp, ip, vp) = (
        DevPtrMut::of(&mean, OP)?,
        DevPtrMut::of(&invstd, OP)?,
        DevPtrMut::of(&var_u, OP)?,
    );
    let cfg = s.launch(c);
    with_dtype!(x.dtype(), OP, T => {
        let xp = DevPtr::<T>::of(x, OP)?;
        k::batch_norm_stats(
            &gpu, cfg, xp, m64, c32, rows, eps as f32, mom, rm, rv, part, done, mp, ip, vp, nm, nv,
        )
    })?;
    let e = x.dtype().size_in_bytes();
    tf::record(
        Family::BnStats,
        tf::bn_stats(x.numel(), c, e, s.g, running.is_some()),
    );
    Ok((mean, invstd, var_u, new))
}

/// The batch statistics alone: (mean, invstd, unbiased variance), f32.
pub fn stats(x: &Tensor, eps: f64) -> Result<(Tensor, Tensor, Tensor)> {
    let (mean, invstd, var_u, _) = stats_running(x, eps, None)?;
    Ok((mean, invstd, var_u))
}

/// y = act((x − mean)·invstd·gamma + beta [+ res]) with act = ReLU when `relu`, in one pass.
pub(crate) fn apply(
    x: &Tensor,
    res: Option<&Tensor>,
    mean: &Tensor,
    invstd: &Tensor,
    gamma: &Tensor,
    beta: Option<&Tensor>,
    relu: bool,
) -> Result<Tensor> {
    let gpu = gpu_of(x, OP)?;
    let (m, c, m64, c32) = shape_of(x)?;
    let (mean, invstd, gamma) = (f32_of(mean)?, f32_of(invstd)?, f32_of(gamma)?);
    let beta = beta.map(f32_of).transpose()?;
    let y = empty(&gpu, x.shape(), x.dtype())?;
    let (cfg, lanes) = group_launch(m, c);
    let lanes = dim(lanes, "batch_norm: lanes")?;
    let (meanp, invstdp) = (DevPtr::of(&mean, OP)?, DevPtr::of(&invstd, OP)?);
    let (gammap, betap) = (DevPtr::of(&gamma, OP)?, DevPtr::of_opt(beta.as_ref(), OP)?);
    with_dtype!(x.dtype(), OP, T => {
        let (xp, rp) = (DevPtr::<T>::of(x, OP)?, DevPtr::of_opt(res, OP)?);
        let yp = DevPtrMut::of(&y, OP)?;
        k::batch_norm_apply(
            &gpu, cfg, xp, rp, meanp, invstdp, gammap, betap, m64, c32, lanes, i32::from(relu), yp,
        )
    })?;
    let e = x.dtype().size_in_bytes();
    tf::record(
        Family::BnApply,
        tf::bn_apply(x.numel(), c, e, res.is_some()),
    );
    Ok(y)
}

/// Returns (y, batch mean, batch invstd, unbiased batch variance, updated running averages
/// when given), statistics in f32.
#[allow(clippy::type_complexity)]
pub fn train_forward(
    x: &Tensor,
    gamma: &Tensor,
    beta: Option<&Tensor>,
    eps: f64,
    running: Option<Running>,
) -> Result<(Tensor, Tensor, Tensor, Tensor, Option<(Tensor, Tensor)>)> {
    let (mean, invstd, var_u, new) = stats_running(x, eps, running)?;
    let y = apply(x, None, &mean, &invstd, gamma, beta, false)?;
    Ok((y, mean, invstd, var_u, new))
}

/// invstd = 1/sqrt(var + eps) (f32).
pub fn invstd(var: &Tensor, eps: f64) -> Result<Tensor> {
    let gpu = gpu_of(var, OP)?;
    let var = f32_of(var)?;
    let out = empty(&gpu, var.shape(), DType::F32)?;
    let c = var.numel();
    let (varp, outp) = (DevPtr::of(&var, OP)?, DevPtrMut::of(&out, OP)?);
    let c32 = dim(c, "batch_norm: channels")?;
    k::batch_norm_invstd(&gpu, Launch::flat(c), varp, eps as f32, c32, outp)?;
    Ok(out)
}

/// Normalises with given running statistics: returns (y, invstd f32).
pub fn eval_forward(
    x: &Tensor,
    gamma: &Tensor,
    beta: Option<&Tensor>,
    mean: &Tensor,
    var: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor)> {
    let invstd = invstd(var, eps)?;
    let y = apply(x, None, mean, &invstd, gamma, beta, false)?;
    Ok((y, invstd))
}

impl BatchNormKernels for Cuda {
    fn train_forward(
        x: &Tensor,
        gamma: &Tensor,
        beta: Option<&Tensor>,
        eps: f64,
    ) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
        let (y, mean, invstd, var_u, _) = train_forward(x, gamma, beta, eps, None)?;
        Ok((y, mean, invstd, var_u))
    }

    fn eval_forward(
        x: &Tensor,
        gamma: &Tensor,
        beta: Option<&Tensor>,
        mean: &Tensor,
        var: &Tensor,
        eps: f64,
    ) -> Result<(Tensor, Tensor)> {
        eval_forward(x, gamma, beta, mean, var, eps)
    }

    fn grad_sums(
        x: &Tensor,
        dy: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        cuda_backward::grad_sums(x, dy, mean, invstd)
    }

    fn backward_from_sums(
        x: &Tensor,
        dy: &Tensor,
        gamma: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
        (dgamma, dbeta): (&Tensor, &Tensor),
        count: Option<usize>,
    ) -> Result<Tensor> {
        // The kernel takes the row count of the statistics and whether they are the batch's.
        let rows = x.numel() / x.last_dim();
        let (m, batch_stats) = (count.unwrap_or(rows), count.is_some());
        cuda_backward::backward_from_sums(x, dy, gamma, mean, invstd, dgamma, dbeta, m, batch_stats)
    }
}
