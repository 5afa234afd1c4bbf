//! Batch norm with running statistics (momentum 0.1, eps 1e-5, as PyTorch; TF's decay 0.9).

use super::{Ctx, Summary};
use crate::ops::batch_norm::Running;
use crate::ops::{self, BnMode};
use crate::params::{Init, ParamId, ParamKind, ParamStore};
use crate::{autograd::Var, Result};

pub const BN_EPS: f64 = 1e-5;

/// What follows the normalisation inside the same fused op.
enum Activation<'a> {
    None,
    Relu,
    AddRelu(&'a Var),
}
pub const BN_MOMENTUM: f64 = 0.1;

#[derive(Clone, Debug)]
pub struct BatchNorm {
    pub name: String,
    pub gamma: ParamId,
    pub beta: Option<ParamId>,
    pub running_mean: ParamId,
    pub running_var: ParamId,
    pub channels: usize,
    pub eps: f64,
    pub momentum: f64,
}

impl BatchNorm {
    /// `zero_gamma` starts the scale at zero (the last BN of each residual block); `center`
    /// false drops beta (the projection head's last layer).
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        channels: usize,
        zero_gamma: bool,
        center: bool,
    ) -> Result<Self> {
        let j = |n| super::join(name, n);
        let gamma = store.add(
            &j("weight"),
            &[channels],
            ParamKind::BnGamma,
            if zero_gamma { Init::Zeros } else { Init::Ones },
        )?;
        let beta = if center {
            Some(store.add(&j("bias"), &[channels], ParamKind::BnBeta, Init::Zeros)?)
        } else {
            None
        };
        let running_mean = store.add(
            &j("running_mean"),
            &[channels],
            ParamKind::BnRunningMean,
            Init::Zeros,
        )?;
        let running_var = store.add(
            &j("running_var"),
            &[channels],
            ParamKind::BnRunningVar,
            Init::Ones,
        )?;
        Ok(BatchNorm {
            name: name.to_string(),
            gamma,
            beta,
            running_mean,
            running_var,
            channels,
            eps: BN_EPS,
            momentum: BN_MOMENTUM,
        })
    }

    /// Train mode normalises with batch statistics and folds them into the running averages
    /// (unbiased variance, as PyTorch); eval mode uses the running averages.
    pub fn forward(&self, ctx: &mut Ctx, x: &Var) -> Result<Var> {
        self.forward_act(ctx, x, Activation::None)
    }

    /// relu(bn(x)), one fused op.
    pub fn forward_relu(&self, ctx: &mut Ctx, x: &Var) -> Result<Var> {
        self.forward_act(ctx, x, Activation::Relu)
    }

    /// relu(bn(x) + residual), one fused op (the end of a residual block).
    pub fn forward_add_relu(&self, ctx: &mut Ctx, x: &Var, residual: &Var) -> Result<Var> {
        self.forward_act(ctx, x, Activation::AddRelu(residual))
    }

    fn forward_act(&self, ctx: &mut Ctx, x: &Var, act: Activation) -> Result<Var> {
        let _range = crate::profile::layer(&self.name);
        // Scale, shift and statistics in the accumulator dtype (f32 for bf16 activations).
        let acc = x.value().dtype().accumulator();
        let g = ctx.param_as(self.gamma, acc)?;
        let b = self.beta.map(|b| ctx.param_as(b, acc)).transpose()?;
        let (mean, var);
        // With a communicator of several ranks, train mode is synchronised batch norm.
        let comm = ctx.comm.clone();
        let mode = if ctx.train {
            // The running averages ride along: on the GPU their update comes out of the
            // statistics launch.
            BnMode::Train {
                eps: self.eps,
                running: Some(Running {
                    mean: ctx.params.value(self.running_mean)?,
                    var: ctx.params.value(self.running_var)?,
                    momentum: self.momentum,
                }),
                comm: comm.as_ref(),
            }
        } else {
            mean = ctx.params.value(self.running_mean)?.to_dtype(acc)?;
            var = ctx.params.value(self.running_var)?.to_dtype(acc)?;
            BnMode::Eval {
                mean: &mean,
                var: &var,
                eps: self.eps,
            }
        };
        let (y, stats) = match (act, &b) {
            (Activation::None, _) => ops::batch_norm(ctx.tape, x, &g, b.as_ref(), mode)?,
            (Activation::Relu, Some(b)) => ops::bn_act::batch_norm_relu(ctx.tape, x, &g, b, mode)?,
            (Activation::AddRelu(r), Some(b)) => {
                ops::bn_act::batch_norm_add_relu(ctx.tape, x, r, &g, b, mode)?
            }
            (_, None) => {
                return Err(crate::Error::Config(format!(
                    "{}: a fused BN + ReLU needs a beta",
                    self.name
                )));
            }
        };
        if let Some((new_mean, new_var)) = stats.and_then(|st| st.running) {
            ctx.params.set_value(self.running_mean, new_mean)?;
            ctx.params.set_value(self.running_var, new_var)?;
        }
        Ok(y)
    }

    pub fn describe(&self, input: &[usize], s: &mut Summary) -> Vec<usize> {
        let params = self.channels * if self.beta.is_some() { 2 } else { 1 };
        s.push(&self.name, "batch_norm", input, params, 0);
        input.to_vec()
    }
}
