//! Train-mode statistics folded into running averages (as PyTorch: new = (1 − momentum)·old +
//! momentum·batch, with the unbiased batch variance). On the GPU, with f32 averages beside the
//! input, the update comes out of the statistics launch itself (src/ops/batch_norm/cuda.rs); elsewhere it
//! is three elementwise ops per average, in the averages' own dtype.

use super::{batch_norm_train_forward, check};
use crate::ops::bn_act::bn_act_stats;
use crate::ops::elementwise::{add_forward, scale_forward};
use crate::{Result, Tensor};

/// Running averages a train-mode batch folds its statistics into.
#[derive(Clone, Copy)]
pub struct Running<'a> {
    pub mean: &'a Tensor,
    pub var: &'a Tensor,
    pub momentum: f64,
}

impl Running<'_> {
    /// The pieces the GPU kernel takes, when it can take them: f32 averages on x's device.
    #[cfg(feature = "cuda")]
    fn fusable(&self, x: &Tensor) -> Option<super::cuda::Running<'_>> {
        let ok = |t: &Tensor| t.dtype() == crate::DType::F32 && t.device() == x.device();
        let shaped = x.rank() >= 2 && x.numel() > 0;
        (matches!(x.device(), crate::Device::Cuda(_)) && shaped && ok(self.mean) && ok(self.var))
            .then_some((self.mean, self.var, self.momentum))
    }

    fn check(&self, x: &Tensor) -> Result<()> {
        let c = x.last_dim();
        if self.mean.shape() != [c] || self.var.shape() != [c] {
            return Err(crate::Error::shape(
                "batch_norm",
                format!(
                    "running statistics of shape {:?}/{:?} for {c} channels",
                    self.mean.shape(),
                    self.var.shape()
                ),
            ));
        }
        Ok(())
    }
}

/// (new mean, new var) from the batch's mean and unbiased variance (any dtype, any device).
pub fn running_update(
    r: Running,
    mean: &Tensor,
    var_unbiased: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let m = r.momentum;
    let blend = |old: &Tensor, batch: &Tensor| {
        add_forward(
            &scale_forward(old, 1.0 - m)?,
            &scale_forward(&batch.to_dtype(old.dtype())?, m)?,
        )
    };
    Ok((blend(r.mean, mean)?, blend(r.var, var_unbiased)?))
}

type WithRunning = (Tensor, Tensor, Tensor, Option<(Tensor, Tensor)>);

/// [`batch_norm_train_forward`] plus the updated running averages when given: (y, mean,
/// invstd, unbiased var, new averages).
pub fn batch_norm_train_forward_running(
    x: &Tensor,
    gamma: &Tensor,
    beta: Option<&Tensor>,
    eps: f64,
    running: Option<Running>,
) -> Result<(Tensor, WithRunning)> {
    check(x, gamma, beta)?;
    if let Some(r) = &running {
        r.check(x)?;
    }
    #[cfg(feature = "cuda")]
    if let Some(f) = running.as_ref().and_then(|r| r.fusable(x)) {
        let _range = crate::profile::op("batch_norm");
        let (y, mean, invstd, var_u, new) =
            super::cuda::train_forward(x, gamma, beta, eps, Some(f))?;
        return Ok((y, (mean, invstd, var_u, new)));
    }
    let (y, mean, invstd, var_u) = batch_norm_train_forward(x, gamma, beta, eps)?;
    let new = running
        .map(|r| running_update(r, &mean, &var_u))
        .transpose()?;
    Ok((y, (mean, invstd, var_u, new)))
}

/// The batch statistics of BN + ReLU ([`bn_act_stats`]) plus the updated running averages.
pub fn bn_act_stats_running(x: &Tensor, eps: f64, running: Option<Running>) -> Result<WithRunning> {
    if let Some(r) = &running {
        r.check(x)?;
    }
    #[cfg(feature = "cuda")]
    if let Some(f) = running.as_ref().and_then(|r| r.fusable(x)) {
        let _range = crate::profile::op("bn_act");
        return super::cuda::stats_running(x, eps, Some(f));
    }
    let (mean, invstd, var_u) = bn_act_stats(x, eps)?;
    let new = running
        .map(|r| running_update(r, &mean, &var_u))
        .transpose()?;
    Ok((mean, invstd, var_u, new))
}
