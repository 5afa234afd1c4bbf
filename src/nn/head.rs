//! The SimCLRv2 projection head g(·): layers 1..L−1 are dense (no bias) → BN → ReLU at the input
//! width; the last is dense to the projection size → BN without beta, no ReLU.

use super::{join, BatchNorm, Ctx, Linear, Summary};
use crate::params::ParamStore;
use crate::{autograd::Var, Error, Result};

#[derive(Clone, Debug)]
pub struct ProjectionHead {
    pub layers: Vec<(Linear, BatchNorm)>,
    /// Layers of the full head; fewer may be built when fine-tuning keeps only the first k.
    pub total: usize,
}

impl ProjectionHead {
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        in_dim: usize,
        out_dim: usize,
        num_layers: usize,
    ) -> Result<Self> {
        Self::truncated(store, name, in_dim, out_dim, num_layers, num_layers)
    }

    /// The first `keep` layers of a `num_layers`-layer head (what fine-tuning from projection
    /// layer `keep` uses), with the same names and shapes as in the full head.
    pub fn truncated(
        store: &mut ParamStore,
        name: &str,
        in_dim: usize,
        out_dim: usize,
        num_layers: usize,
        keep: usize,
    ) -> Result<Self> {
        if !(1..=4).contains(&num_layers) || keep > num_layers {
            return Err(Error::Config(format!(
                "projection head needs 1 to 4 layers (got {num_layers}) and at most that many kept (got {keep})"
            )));
        }
        let layers = (0..keep)
            .map(|i| {
                let last = i + 1 == num_layers;
                let fout = if last { out_dim } else { in_dim };
                Ok((
                    Linear::new(
                        store,
                        &join(name, &format!("{i}.linear")),
                        in_dim,
                        fout,
                        false,
                    )?,
                    BatchNorm::new(store, &join(name, &format!("{i}.bn")), fout, false, !last)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(ProjectionHead {
            layers,
            total: num_layers,
        })
    }

    /// Outputs of layers 0..=k: index 0 is the input (the encoder's representation), index i the
    /// output of layer i — what fine-tuning from "projection layer i" starts from.
    pub fn forward_upto(&self, ctx: &mut Ctx, h: &Var, k: usize) -> Result<Vec<Var>> {
        let n = self.layers.len();
        if k > n {
            return Err(Error::Config(format!(
                "projection layer {k} requested from a head of {n} layers"
            )));
        }
        let mut outs = vec![h.clone()];
        for (i, (lin, bn)) in self.layers[..k].iter().enumerate() {
            let x = lin.forward(ctx, outs.last().unwrap())?;
            // Hidden layers: BN + ReLU fused; the head's last layer (no beta) has no ReLU. A
            // truncated head's last kept layer is still a hidden one (ReLU, as in the official
            // code's `hiddens_list`, which fine-tuning reads).
            let x = if i + 1 < self.total {
                bn.forward_relu(ctx, &x)?
            } else {
                bn.forward(ctx, &x)?
            };
            outs.push(x);
        }
        Ok(outs)
    }

    /// All layers; the last output is the projection z.
    pub fn forward_all(&self, ctx: &mut Ctx, h: &Var) -> Result<Vec<Var>> {
        self.forward_upto(ctx, h, self.layers.len())
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Width of the output of layer k (0: the input).
    pub fn dim_at(&self, k: usize, in_dim: usize) -> usize {
        if k == 0 {
            in_dim
        } else {
            self.layers[k - 1].0.fout
        }
    }

    pub fn describe(&self, input: &[usize], s: &mut Summary) -> Vec<usize> {
        let mut h = input.to_vec();
        for (lin, bn) in &self.layers {
            h = lin.describe(&h, s);
            bn.describe(&h, s);
        }
        h
    }
}
