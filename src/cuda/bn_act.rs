//! Batch norm + (residual add +) ReLU on the GPU (kernels/bn_act.cu): one apply pass and one
//! backward-apply pass; statistics and the finishing of the parameter-gradient sums reuse
//! kernels/batch_norm.cu. Parameters and statistics are read as f32 (cast when given in bf16).

use super::alloc::DeviceBuffer;
use super::bn::{chunks, f32_of};
use super::dims::dim;
use super::kernels::{self as k, with_dtype, DevPtr, DevPtrMut};
use super::module::Launch;
use super::storage::{empty, gpu_of};
use crate::{DType, Result, Tensor};

const OP: &str = "bn_act";

pub use super::bn::stats;

/// invstd = 1/sqrt(var + eps) (f32).
pub fn invstd(var: &Tensor, eps: f64) -> Result<Tensor> {
    let gpu = gpu_of(var, OP)?;
    let var = f32_of(var)?;
    let out = empty(&gpu, var.shape(), DType::F32)?;
    let c = var.numel();
    let (varp, outp) = (DevPtr::of(&var, OP)?, DevPtrMut::of(&out, OP)?);
    let c32 = dim::<i32>(c, "bn_act: channels")?;
    k::batch_norm_invstd(&gpu, Launch::flat(c), varp, eps as f32, c32, outp)?;
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
    let (n64, c32) = (
        dim::<i64>(n, OP)?,
        dim::<i32>(x.last_dim(), "bn_act: channels")?,
    );
    let (mean, invstd) = (DevPtr::of(&mean, OP)?, DevPtr::of(&invstd, OP)?);
    let (gamma, beta) = (DevPtr::of(&gamma, OP)?, DevPtr::of(&beta, OP)?);
    let cfg = Launch::flat(n);
    with_dtype!(x.dtype(), OP, T => {
        let (xp, yp) = (DevPtr::<T>::of(x, OP)?, DevPtrMut::of(&y, OP)?);
        match residual {
            Some(r) => {
                let r = DevPtr::of(r, OP)?;
                k::batch_norm_add_relu_forward(
                    &gpu, cfg, xp, r, mean, invstd, gamma, beta, yp, n64, c32,
                )
            }
            None => {
                k::batch_norm_relu_forward(&gpu, cfg, xp, mean, invstd, gamma, beta, yp, n64, c32)
            }
        }
    })?;
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
    // g x c f32 partials each, alive until both kernels are queued.
    let (p1, p2) = unsafe { (DevPtrMut::from_raw(p1.ptr()), DevPtrMut::from_raw(p2.ptr())) };
    let (m64, rows64) = (
        dim::<i64>(m, "bn_act: rows")?,
        dim::<i64>(rows, "bn_act: rows")?,
    );
    let (c32, g32) = (
        dim::<i32>(c, "bn_act: channels")?,
        dim::<i32>(g, "bn_act: chunks")?,
    );
    let (meanp, invstdp) = (DevPtr::of(&mean, OP)?, DevPtr::of(&invstd, OP)?);
    let cfg = Launch::columns(c, g);
    with_dtype!(x.dtype(), OP, T => {
        let (xp, yp, dyp) = (DevPtr::<T>::of(x, OP)?, DevPtr::of(y, OP)?, DevPtr::of(dy, OP)?);
        k::batch_norm_relu_reduce(
            &gpu, cfg, xp, yp, dyp, meanp, invstdp, m64, c32, rows64, p1, p2,
        )
    })?;
    let dgamma = empty(&gpu, &[c], DType::F32)?;
    let dbeta = empty(&gpu, &[c], DType::F32)?;
    let (o1, o2) = (DevPtrMut::of(&dbeta, OP)?, DevPtrMut::of(&dgamma, OP)?);
    let (p1, p2) = (p1.as_const(), p2.as_const());
    // Mode 2 of the finishing kernel: (Σ dy', Σ dy'·x̂) as they are.
    k::batch_norm_finish(&gpu, Launch::flat(c), p1, p2, g32, c32, m64, 0.0, 2, o1, o2)?;
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
    let (n64, c32, m64) = (
        dim::<i64>(n, OP)?,
        dim::<i32>(c, "bn_act: channels")?,
        dim::<i64>(m, OP)?,
    );
    let (gamma, mean, invstd) = (
        DevPtr::of(&gamma, OP)?,
        DevPtr::of(&mean, OP)?,
        DevPtr::of(&invstd, OP)?,
    );
    let (dgamma, dbeta) = (DevPtr::of(&dgamma, OP)?, DevPtr::of(&dbeta, OP)?);
    let b = i32::from(batch_stats);
    with_dtype!(x.dtype(), OP, T => {
        let (xp, yp, dyp) = (DevPtr::<T>::of(x, OP)?, DevPtr::of(y, OP)?, DevPtr::of(dy, OP)?);
        let (dxp, dresp) = (DevPtrMut::of(&dx, OP)?, DevPtrMut::of_opt(dres.as_ref(), OP)?);
        k::batch_norm_relu_backward(
            &gpu,
            Launch::flat(n),
            xp,
            yp,
            dyp,
            gamma,
            mean,
            invstd,
            dgamma,
            dbeta,
            n64,
            c32,
            m64,
            b,
            dxp,
            dresp,
        )
    })?;
    Ok((dx, dres))
}
