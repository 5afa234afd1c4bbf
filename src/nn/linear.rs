//! A dense layer, weight [out, in], optional bias.

use super::{Ctx, Summary};
use crate::ops;
use crate::params::{Init, ParamId, ParamKind, ParamStore};
use crate::{autograd::Var, Result};

#[derive(Clone, Debug)]
pub struct Linear {
    pub name: String,
    pub weight: ParamId,
    pub bias: Option<ParamId>,
    pub fin: usize,
    pub fout: usize,
}

impl Linear {
    /// Uniform(±1/sqrt(in)) weights and bias, PyTorch's default for nn.Linear.
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        fin: usize,
        fout: usize,
        bias: bool,
    ) -> Result<Self> {
        let bound = 1.0 / (fin as f64).sqrt();
        let weight = store.add(
            &super::join(name, "weight"),
            &[fout, fin],
            ParamKind::Weight,
            Init::Uniform { bound },
        )?;
        let bias = if bias {
            Some(store.add(
                &super::join(name, "bias"),
                &[fout],
                ParamKind::Bias,
                Init::Uniform { bound },
            )?)
        } else {
            None
        };
        Ok(Linear {
            name: name.to_string(),
            weight,
            bias,
            fin,
            fout,
        })
    }

    pub fn forward(&self, ctx: &mut Ctx, x: &Var) -> Result<Var> {
        let _range = crate::profile::layer(&self.name);
        let dt = x.value().dtype();
        let w = ctx.param_as(self.weight, dt)?;
        let b = self.bias.map(|b| ctx.param_as(b, dt)).transpose()?;
        ops::linear(ctx.tape, x, &w, b.as_ref())
    }

    pub fn describe(&self, input: &[usize], s: &mut Summary) -> Vec<usize> {
        let n = input[0];
        let out = vec![n, self.fout];
        let params = self.fin * self.fout + if self.bias.is_some() { self.fout } else { 0 };
        s.push(
            &self.name,
            "linear",
            &out,
            params,
            (n * self.fin * self.fout) as u64,
        );
        out
    }
}
