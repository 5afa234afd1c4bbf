//! Batch norm + (residual add +) ReLU on the GPU (kernels/bn_act.cu): one apply pass and one
//! backward-apply pass; statistics and the finishing of the parameter-gradient sums reuse
//! kernels/batch_norm.cu. Parameters and statistics are read as f32 (cast when given in bf16).

use super::alloc::DeviceBuffer;
use super::bn::{chunks, f32_of};
use super::module::{Arg, Launch};
use super::ops::{i32a, i64a};
use super::storage::{empty, gpu_of, ptr};
use crate::{DType, Result, Tensor};

const OP: &str = "bn_act";

pub use super::bn::stats;

/// invstd = 1/sqrt(var + eps) (f32).
pub fn invstd(var: &Tensor, eps: f64) -> Result<Tensor> {
    let gpu = gpu_of(var, OP)?;
    let var = f32_of(var)?;
    let out = empty(&gpu, var.shape(), DType::F32)?;
    let c = var.numel();
    let args = [
        ptr(&var, OP)?,
        Arg::F32(eps as f32),
        i32a(c),
        ptr(&out, OP)?,
    ];
    gpu.launch("batch_norm_invstd", Launch::flat(c), &args)?;
    Ok(out)
}

/// y = relu(bn(x) [+ residual]) in x's dtype.
pub fn forward(
    x: &Tensor,
    residual: Option<&Tensor>,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<Tensor> {
    let gpu = gpu_of(x, OP)?;
    let (gamma, beta, mean, invstd) = (
        f32_of(gamma)?,
        f32_of(beta)?,
        f32_of(mean)?,
        f32_of(invstd)?,
    );
    let y = empty(&gpu, x.shape(), x.dtype())?;
    let n = x.numel();
    let mut args = vec![ptr(x, OP)?];
    if let Some(r) = residual {
        args.push(ptr(r, OP)?);
    }
    args.extend([
        ptr(&mean, OP)?,
        ptr(&invstd, OP)?,
        ptr(&gamma, OP)?,
        ptr(&beta, OP)?,
        ptr(&y, OP)?,
        i64a(n),
        i32a(x.last_dim()),
    ]);
    let name = if residual.is_some() {
        "batch_norm_add_relu_forward"
    } else {
        "batch_norm_relu_forward"
    };
    gpu.launch_typed(name, x.dtype(), Launch::flat(n), &args)?;
    Ok(y)
}

/// Returns (dx, dgamma f32, dbeta f32, dresidual when `residual`).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &Tensor,
    y: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    batch_stats: bool,
    residual: bool,
) -> Result<(Tensor, Tensor, Tensor, Option<Tensor>)> {
    let (dgamma, dbeta) = grad_sums(x, y, dy, mean, invstd)?;
    let m = x.numel() / x.last_dim();
    let sums = (&dgamma, &dbeta);
    let (dx, dres) = backward_from_sums(
        x,
        y,
        dy,
        gamma,
        mean,
        invstd,
        sums,
        m,
        batch_stats,
        residual,
    )?;
    Ok((dx, dgamma, dbeta, dres))
}

/// (dgamma, dbeta) = (Σ dy'·x̂, Σ dy') over the masked dy' = dy·[y > 0], f32.
pub fn grad_sums(
    x: &Tensor,
    y: &Tensor,
    dy: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let gpu = gpu_of(x, OP)?;
    let (mean, invstd) = (f32_of(mean)?, f32_of(invstd)?);
    let c = x.last_dim();
    let m = x.numel() / c;
    let (g, rows) = chunks(m, c);
    let p1 = DeviceBuffer::alloc(&gpu, 4 * g * c)?;
    let p2 = DeviceBuffer::alloc(&gpu, 4 * g * c)?;
    let args = [
        ptr(x, OP)?,
        ptr(y, OP)?,
        ptr(dy, OP)?,
        ptr(&mean, OP)?,
        ptr(&invstd, OP)?,
        i64a(m),
        i32a(c),
        i64a(rows),
        Arg::Ptr(p1.ptr()),
        Arg::Ptr(p2.ptr()),
    ];
    gpu.launch_typed(
        "batch_norm_relu_reduce",
        x.dtype(),
        Launch::columns(c, g),
        &args,
    )?;
    let dgamma = empty(&gpu, &[c], DType::F32)?;
    let dbeta = empty(&gpu, &[c], DType::F32)?;
    let args = [
        Arg::Ptr(p1.ptr()),
        Arg::Ptr(p2.ptr()),
        i32a(g),
        i32a(c),
        i64a(m),
        Arg::F32(0.0),
        Arg::I32(2),
        ptr(&dbeta, OP)?,
        ptr(&dgamma, OP)?,
    ];
    gpu.launch("batch_norm_finish", Launch::flat(c), &args)?;
    Ok((dgamma, dbeta))
}

/// (dx, dresidual when `residual`) from the sums (dgamma, dbeta) over the `m` rows the
/// statistics came from.
#[allow(clippy::too_many_arguments)]
pub fn backward_from_sums(
    x: &Tensor,
    y: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    sums: (&Tensor, &Tensor),
    m: usize,
    batch_stats: bool,
    residual: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let gpu = gpu_of(x, OP)?;
    let (gamma, mean, invstd) = (f32_of(gamma)?, f32_of(mean)?, f32_of(invstd)?);
    let (dgamma, dbeta) = (f32_of(sums.0)?, f32_of(sums.1)?);
    let (n, c) = (x.numel(), x.last_dim());
    let dx = empty(&gpu, x.shape(), x.dtype())?;
    let dres = if residual {
        Some(empty(&gpu, x.shape(), x.dtype())?)
    } else {
        None
    };
    let args = [
        ptr(x, OP)?,
        ptr(y, OP)?,
        ptr(dy, OP)?,
        ptr(&gamma, OP)?,
        ptr(&mean, OP)?,
        ptr(&invstd, OP)?,
        ptr(&dgamma, OP)?,
        ptr(&dbeta, OP)?,
        i64a(n),
        i32a(c),
        i64a(m),
        Arg::I32(batch_stats as i32),
        ptr(&dx, OP)?,
        dres.as_ref().map_or(Ok(Arg::Ptr(0)), |d| ptr(d, OP))?,
    ];
    gpu.launch_typed(
        "batch_norm_relu_backward",
        x.dtype(),
        Launch::flat(n),
        &args,
    )?;
    Ok((dx, dres))
}
