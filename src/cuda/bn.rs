//! Batch norm over the last dimension (kernels/batch_norm.cu). x and dy may be f32 or bf16;
//! gamma, beta and running statistics are read as f32 (converted first if given in bf16), and
//! the statistics (mean, invstd, unbiased var) and parameter gradients come back as f32.

use super::alloc::DeviceBuffer;
use super::device::Gpu;
use super::dims::dim;
use super::kernels::{self as k, with_dtype, DevPtr, DevPtrMut};
use super::module::Launch;
use super::storage::{cast, empty, gpu_of};
use crate::{DType, Result, Tensor};
use std::sync::Arc;

const OP: &str = "batch_norm";

pub(crate) fn f32_of(t: &Tensor) -> Result<Tensor> {
    cast(t, DType::F32)
}

/// Row chunking of the per-channel reductions: (row chunks, rows per chunk), sized so the grid
/// has a couple of thousand blocks whatever the channel count.
pub(crate) fn chunks(m: usize, c: usize) -> (usize, usize) {
    let col_blocks = c.div_ceil(32).max(1);
    let g = m.div_ceil(64).clamp(1, (2048 / col_blocks).max(1));
    let rows = m.div_ceil(g).max(1);
    (m.div_ceil(rows).max(1), rows)
}

/// Per-channel sums of `mode` (see the kernel) into f32 partials, then the finishing kernel.
#[allow(clippy::too_many_arguments)]
fn reduce(
    gpu: &Arc<Gpu>,
    x: &Tensor,
    dy: Option<&Tensor>,
    mean: Option<&Tensor>,
    invstd: Option<&Tensor>,
    mode: i32,
    eps: f32,
    outs: [Option<&Tensor>; 2],
) -> Result<()> {
    let c = x.last_dim();
    let m = x.numel() / c;
    let (g, rows) = chunks(m, c);
    let p1 = DeviceBuffer::alloc(gpu, 4 * g * c)?;
    let p2 = DeviceBuffer::alloc(gpu, if mode == 2 { 4 * g * c } else { 4 })?;
    // g x c f32 partials each (p2 unused but for mode 2), alive until both kernels are queued.
    let (p1, p2) = unsafe { (DevPtrMut::from_raw(p1.ptr()), DevPtrMut::from_raw(p2.ptr())) };
    let (m64, rows64) = (dim(m, "batch_norm: rows")?, dim(rows, "batch_norm: rows")?);
    let (c32, g32) = (
        dim(c, "batch_norm: channels")?,
        dim(g, "batch_norm: chunks")?,
    );
    let (mean, invstd) = (DevPtr::of_opt(mean, OP)?, DevPtr::of_opt(invstd, OP)?);
    with_dtype!(x.dtype(), OP, T => {
        let (xp, dyp) = (DevPtr::<T>::of(x, OP)?, DevPtr::of_opt(dy, OP)?);
        let cfg = Launch::columns(c, g);
        k::batch_norm_reduce(gpu, cfg, xp, dyp, mean, invstd, m64, c32, rows64, mode, p1, p2)
    })?;
    let (o1, o2) = (
        DevPtrMut::of_opt(outs[0], OP)?,
        DevPtrMut::of_opt(outs[1], OP)?,
    );
    let (p1, p2) = (p1.as_const(), p2.as_const());
    let cfg = Launch::flat(c);
    k::batch_norm_finish(gpu, cfg, p1, p2, g32, c32, m64, eps, mode, o1, o2)
}

fn apply(
    gpu: &Arc<Gpu>,
    x: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    gamma: &Tensor,
    beta: Option<&Tensor>,
) -> Result<Tensor> {
    let y = empty(gpu, x.shape(), x.dtype())?;
    let beta = beta.map(f32_of).transpose()?;
    let (n, c) = (
        dim(x.numel(), OP)?,
        dim(x.last_dim(), "batch_norm: channels")?,
    );
    let (mean, invstd) = (DevPtr::of(mean, OP)?, DevPtr::of(invstd, OP)?);
    let (gamma, beta) = (DevPtr::of(gamma, OP)?, DevPtr::of_opt(beta.as_ref(), OP)?);
    with_dtype!(x.dtype(), OP, T => {
        let (xp, yp) = (DevPtr::<T>::of(x, OP)?, DevPtrMut::of(&y, OP)?);
        let cfg = Launch::flat(x.numel());
        k::batch_norm_apply(gpu, cfg, xp, mean, invstd, gamma, beta, yp, n, c)
    })?;
    Ok(y)
}

/// Returns (y, batch mean, batch invstd, unbiased batch variance), statistics in f32.
pub fn train_forward(
    x: &Tensor,
    gamma: &Tensor,
    beta: Option<&Tensor>,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
    let gpu = gpu_of(x, OP)?;
    let gamma = f32_of(gamma)?;
    let (mean, invstd, var_u) = stats(x, eps)?;
    let y = apply(&gpu, x, &mean, &invstd, &gamma, beta)?;
    Ok((y, mean, invstd, var_u))
}

/// The batch statistics alone: (mean, invstd, unbiased variance), f32.
pub fn stats(x: &Tensor, eps: f64) -> Result<(Tensor, Tensor, Tensor)> {
    let gpu = gpu_of(x, OP)?;
    let c = x.last_dim();
    let mean = empty(&gpu, &[c], DType::F32)?;
    let invstd = empty(&gpu, &[c], DType::F32)?;
    let var_u = empty(&gpu, &[c], DType::F32)?;
    reduce(&gpu, x, None, None, None, 0, 0.0, [Some(&mean), None])?;
    reduce(
        &gpu,
        x,
        None,
        Some(&mean),
        None,
        1,
        eps as f32,
        [Some(&invstd), Some(&var_u)],
    )?;
    Ok((mean, invstd, var_u))
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
    let gpu = gpu_of(x, OP)?;
    let c = x.last_dim();
    let (gamma, mean, var) = (f32_of(gamma)?, f32_of(mean)?, f32_of(var)?);
    let invstd = empty(&gpu, &[c], DType::F32)?;
    let (varp, out) = (DevPtr::of(&var, OP)?, DevPtrMut::of(&invstd, OP)?);
    let c32 = dim(c, "batch_norm: channels")?;
    k::batch_norm_invstd(&gpu, Launch::flat(c), varp, eps as f32, c32, out)?;
    let y = apply(&gpu, x, &mean, &invstd, &gamma, beta)?;
    Ok((y, invstd))
}

/// Returns (dx in x's dtype, dgamma f32, dbeta f32).
pub fn backward(
    x: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    batch_stats: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (dgamma, dbeta) = grad_sums(x, dy, mean, invstd)?;
    let m = x.numel() / x.last_dim();
    let dx = backward_from_sums(x, dy, gamma, mean, invstd, &dgamma, &dbeta, m, batch_stats)?;
    Ok((dx, dgamma, dbeta))
}

/// (dgamma, dbeta) = (Σ dy·x̂, Σ dy), f32.
pub fn grad_sums(
    x: &Tensor,
    dy: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let gpu = gpu_of(x, OP)?;
    let c = x.last_dim();
    let (mean, invstd) = (f32_of(mean)?, f32_of(invstd)?);
    let dgamma = empty(&gpu, &[c], DType::F32)?;
    let dbeta = empty(&gpu, &[c], DType::F32)?;
    reduce(
        &gpu,
        x,
        Some(dy),
        Some(&mean),
        Some(&invstd),
        2,
        0.0,
        [Some(&dbeta), Some(&dgamma)],
    )?;
    Ok((dgamma, dbeta))
}

/// dx in x's dtype from the sums over the `m` rows the statistics came from.
#[allow(clippy::too_many_arguments)]
pub fn backward_from_sums(
    x: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    dgamma: &Tensor,
    dbeta: &Tensor,
    m: usize,
    batch_stats: bool,
) -> Result<Tensor> {
    let gpu = gpu_of(x, OP)?;
    let c = x.last_dim();
    let (gamma, mean, invstd) = (f32_of(gamma)?, f32_of(mean)?, f32_of(invstd)?);
    let (dgamma, dbeta) = (f32_of(dgamma)?, f32_of(dbeta)?);
    let dx = empty(&gpu, x.shape(), x.dtype())?;
    let (n64, c32, m64) = (
        dim(x.numel(), OP)?,
        dim(c, "batch_norm: channels")?,
        dim(m, OP)?,
    );
    let (gamma, mean, invstd) = (
        DevPtr::of(&gamma, OP)?,
        DevPtr::of(&mean, OP)?,
        DevPtr::of(&invstd, OP)?,
    );
    let (dgamma, dbeta) = (DevPtr::of(&dgamma, OP)?, DevPtr::of(&dbeta, OP)?);
    let cfg = Launch::flat(x.numel());
    with_dtype!(x.dtype(), OP, T => {
        let (xp, dyp) = (DevPtr::<T>::of(x, OP)?, DevPtr::of(dy, OP)?);
        let dxp = DevPtrMut::of(&dx, OP)?;
        let stats = (mean, invstd);
        let b = i32::from(batch_stats);
        k::batch_norm_backward(
            &gpu, cfg, xp, dyp, gamma, stats.0, stats.1, dgamma, dbeta, n64, c32, m64, b, dxp,
        )
    })?;
    Ok(dx)
}
