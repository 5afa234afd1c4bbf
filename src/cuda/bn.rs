//! Batch norm over the last dimension (kernels/batch_norm.cu). x and dy may be f32 or bf16;
//! gamma, beta and running statistics are read as f32 (converted first if given in bf16), and
//! the statistics (mean, invstd, unbiased var) and parameter gradients come back as f32.

use super::alloc::DeviceBuffer;
use super::device::Gpu;
use super::module::{Arg, Launch};
use super::ops::{i32a, i64a};
use super::storage::{cast, empty, gpu_of, ptr};
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
    let opt = |t: Option<&Tensor>| -> Result<Arg> { t.map_or(Ok(Arg::Ptr(0)), |t| ptr(t, OP)) };
    let args = [
        ptr(x, OP)?,
        opt(dy)?,
        opt(mean)?,
        opt(invstd)?,
        i64a(m),
        i32a(c),
        i64a(rows),
        Arg::I32(mode),
        Arg::Ptr(p1.ptr()),
        Arg::Ptr(p2.ptr()),
    ];
    gpu.launch_typed("batch_norm_reduce", x.dtype(), Launch::columns(c, g), &args)?;
    let args = [
        Arg::Ptr(p1.ptr()),
        Arg::Ptr(p2.ptr()),
        i32a(g),
        i32a(c),
        i64a(m),
        Arg::F32(eps),
        Arg::I32(mode),
        opt(outs[0])?,
        opt(outs[1])?,
    ];
    gpu.launch("batch_norm_finish", Launch::flat(c), &args)
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
    let args = [
        ptr(x, OP)?,
        ptr(mean, OP)?,
        ptr(invstd, OP)?,
        ptr(gamma, OP)?,
        beta.as_ref().map_or(Ok(Arg::Ptr(0)), |b| ptr(b, OP))?,
        ptr(&y, OP)?,
        i64a(x.numel()),
        i32a(x.last_dim()),
    ];
    gpu.launch_typed(
        "batch_norm_apply",
        x.dtype(),
        Launch::flat(x.numel()),
        &args,
    )?;
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
    let args = [
        ptr(&var, OP)?,
        Arg::F32(eps as f32),
        i32a(c),
        ptr(&invstd, OP)?,
    ];
    gpu.launch("batch_norm_invstd", Launch::flat(c), &args)?;
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
    let args = [
        ptr(x, OP)?,
        ptr(dy, OP)?,
        ptr(&gamma, OP)?,
        ptr(&mean, OP)?,
        ptr(&invstd, OP)?,
        ptr(&dgamma, OP)?,
        ptr(&dbeta, OP)?,
        i64a(x.numel()),
        i32a(c),
        i64a(m),
        Arg::I32(batch_stats as i32),
        ptr(&dx, OP)?,
    ];
    gpu.launch_typed(
        "batch_norm_backward",
        x.dtype(),
        Launch::flat(x.numel()),
        &args,
    )?;
    Ok(dx)
}
