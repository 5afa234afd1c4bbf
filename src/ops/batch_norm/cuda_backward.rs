//! Batch norm's backward on the GPU (kernels/batch_norm.cu `batch_norm_reduce`, kernels/bn_act.cu
//! `batch_norm_backward`), shared by plain batch norm and BN + (add +) ReLU: the parameter-
//! gradient sums in one launch (their finish folded in), then the input gradient in one pass.
//! Reading x and dy twice (once per launch) is the least a backward can do without keeping the
//! activation on chip: dx needs the sums over every row. The ReLU mask of BN + ReLU comes from
//! the x both launches read anyway ([`Relu::FromInput`]); only with a residual is the saved
//! output read for it. Bytes: src/cuda/traffic_floor.rs.

use super::cuda::{f32_of, shape_of, Scratch};
use crate::cuda::dims::dim;
use crate::cuda::groups::group_launch;
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut};
use crate::cuda::storage::{empty, gpu_of};
use crate::cuda::traffic_floor::{self as tf, Family, Mask};
use crate::{DType, Result, Tensor};

const OP: &str = "batch_norm";

/// Where the backward's ReLU mask comes from (kernels/bn.cuh MASK_*).
#[derive(Clone, Copy)]
pub(crate) enum Relu<'a> {
    /// No ReLU: dy as is.
    Off,
    /// y > 0 of the saved output: BN + add + ReLU, whose output depends on the residual too.
    FromOutput(&'a Tensor),
    /// (x − mean)·invstd·gamma + beta > 0 recomputed from x by the forward's own device
    /// function, so it agrees with the forward's y > 0 bit for bit (BN + ReLU).
    FromInput { gamma: &'a Tensor, beta: &'a Tensor },
}

impl Relu<'_> {
    fn mask(&self) -> Mask {
        match self {
            Relu::Off => Mask::Off,
            Relu::FromOutput(_) => Mask::FromOutput,
            Relu::FromInput { .. } => Mask::FromInput,
        }
    }
    fn y(&self) -> Option<&Tensor> {
        match self {
            Relu::FromOutput(y) => Some(y),
            _ => None,
        }
    }
    /// (gamma, beta) as f32 when the mask is recomputed.
    fn params(&self) -> Result<Option<(Tensor, Tensor)>> {
        match self {
            Relu::FromInput { gamma, beta } => Ok(Some((f32_of(gamma)?, f32_of(beta)?))),
            _ => Ok(None),
        }
    }
}

/// (dgamma, dbeta) = (Σ dy·x̂, Σ dy), f32.
pub fn grad_sums(
    x: &Tensor,
    dy: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<(Tensor, Tensor)> {
    sums(x, Relu::Off, dy, mean, invstd)
}

/// (dgamma, dbeta) = (Σ dy'·x̂, Σ dy') with dy' = dy masked as `relu` says; one launch.
pub(crate) fn sums(
    x: &Tensor,
    relu: Relu,
    dy: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let gpu = gpu_of(x, OP)?;
    let (m, c, m64, c32) = shape_of(x)?;
    let (mean, invstd) = (f32_of(mean)?, f32_of(invstd)?);
    let params = relu.params()?;
    let dgamma = empty(&gpu, &[c], DType::F32)?;
    let dbeta = empty(&gpu, &[c], DType::F32)?;
    let s = Scratch::new(&gpu, m, c)?;
    let (part, done) = unsafe { s.ptrs() };
    let rows = dim(s.rows, "batch_norm: rows")?;
    let (meanp, invstdp) = (DevPtr::of(&mean, OP)?, DevPtr::of(&invstd, OP)?);
    let (gp, bp) = (
        DevPtr::of_opt(params.as_ref().map(|p| &p.0), OP)?,
        DevPtr::of_opt(params.as_ref().map(|p| &p.1), OP)?,
    );
    let (dbp, dgp) = (DevPtrMut::of(&dbeta, OP)?, DevPtrMut::of(&dgamma, OP)?);
    let (cfg, mask) = (s.launch(c), relu.mask() as i32);
    with_dtype!(x.dtype(), OP, T => {
        let (xp, yp, dyp) = (DevPtr::<T>::of(x, OP)?, DevPtr::of_opt(relu.y(), OP)?, DevPtr::of(dy, OP)?);
        k::batch_norm_reduce(
            &gpu, cfg, xp, yp, dyp, gp, bp, meanp, invstdp, mask, m64, c32, rows, part, done, dbp, dgp,
        )
    })?;
    let e = x.dtype().size_in_bytes();
    tf::record(
        Family::BnGradSums,
        tf::bn_grad_sums(x.numel(), c, e, s.g, relu.mask()),
    );
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
    let saved = Saved {
        x,
        relu: Relu::Off,
        gamma,
        mean,
        invstd,
    };
    Ok(backward_apply(&saved, dy, (dgamma, dbeta), m, batch_stats, false)?.0)
}

/// What the backward apply reads besides dy: the forward's input, the ReLU mask's source,
/// gamma and the statistics.
pub(crate) struct Saved<'a> {
    pub x: &'a Tensor,
    pub relu: Relu<'a>,
    pub gamma: &'a Tensor,
    pub mean: &'a Tensor,
    pub invstd: &'a Tensor,
}

/// (dx, dres when `residual`) in one pass, from the sums (dgamma, dbeta) over `m_stats` rows.
pub(crate) fn backward_apply(
    s: &Saved,
    dy: &Tensor,
    sums: (&Tensor, &Tensor),
    m_stats: usize,
    batch_stats: bool,
    residual: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let x = s.x;
    let gpu = gpu_of(x, OP)?;
    let (m, c, m64, c32) = shape_of(x)?;
    let (gamma, mean, invstd) = (f32_of(s.gamma)?, f32_of(s.mean)?, f32_of(s.invstd)?);
    let (dgamma, dbeta) = (f32_of(sums.0)?, f32_of(sums.1)?);
    let params = s.relu.params()?;
    let dx = empty(&gpu, x.shape(), x.dtype())?;
    let dres = residual
        .then(|| empty(&gpu, x.shape(), x.dtype()))
        .transpose()?;
    let (cfg, lanes) = group_launch(m, c);
    let (lanes, ms) = (dim(lanes, "batch_norm: lanes")?, dim(m_stats, OP)?);
    let (gp, mp, ip) = (
        DevPtr::of(&gamma, OP)?,
        DevPtr::of(&mean, OP)?,
        DevPtr::of(&invstd, OP)?,
    );
    let bp = DevPtr::of_opt(params.as_ref().map(|p| &p.1), OP)?;
    let (dgp, dbp) = (DevPtr::of(&dgamma, OP)?, DevPtr::of(&dbeta, OP)?);
    let (b, mask) = (i32::from(batch_stats), s.relu.mask() as i32);
    with_dtype!(x.dtype(), OP, T => {
        let (xp, yp, dyp) = (DevPtr::<T>::of(x, OP)?, DevPtr::of_opt(s.relu.y(), OP)?, DevPtr::of(dy, OP)?);
        let (dxp, drp) = (DevPtrMut::of(&dx, OP)?, DevPtrMut::of_opt(dres.as_ref(), OP)?);
        k::batch_norm_backward(
            &gpu, cfg, xp, yp, dyp, gp, bp, mp, ip, dgp, dbp, mask, m64, c32, lanes, ms, b, dxp, drp,
        )
    })?;
    let e = x.dtype().size_in_bytes();
    let bytes = tf::bn_backward(x.numel(), c, e, s.relu.mask(), batch_stats, residual);
    tf::record(Family::BnBackward, bytes);
    Ok((dx, dres))
}
