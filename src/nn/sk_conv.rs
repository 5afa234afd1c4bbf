//! Selective-kernel convolution: one dense 3x3 conv to 2C channels, BN + ReLU, split into two
//! paths; attention from the pooled sum of the paths (1x1 conv → BN + ReLU → 1x1 conv → softmax
//! over the two paths per channel); output the weighted sum of the paths.

use super::{join, BatchNorm, Conv2d, Ctx, Summary};
use crate::ops;
use crate::params::ParamStore;
use crate::{autograd::Var, Result};

#[derive(Clone, Debug)]
pub struct SkConv {
    pub name: String,
    pub conv: Conv2d,
    pub bn: BatchNorm,
    pub fc1: Conv2d,
    pub fc_bn: BatchNorm,
    pub fc2: Conv2d,
    pub channels: usize,
}

impl SkConv {
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        cin: usize,
        c: usize,
        stride: usize,
        mid: usize,
    ) -> Result<Self> {
        Ok(SkConv {
            name: name.to_string(),
            conv: Conv2d::new(store, &join(name, "conv"), cin, 2 * c, 3, stride)?,
            bn: BatchNorm::new(store, &join(name, "bn"), 2 * c, false, true)?,
            fc1: Conv2d::new(store, &join(name, "fc1"), c, mid, 1, 1)?,
            fc_bn: BatchNorm::new(store, &join(name, "fc_bn"), mid, false, true)?,
            fc2: Conv2d::new(store, &join(name, "fc2"), mid, 2 * c, 1, 1)?,
            channels: c,
        })
    }

    pub fn forward(&self, ctx: &mut Ctx, x: &Var) -> Result<Var> {
        let _range = crate::profile::layer(&self.name);
        let u = self.conv.forward(ctx, x)?;
        let u = self.bn.forward_relu(ctx, &u)?;
        let n = u.shape()[0];
        // Linked: the pool's backward writes all of du, the mix's term included.
        let (s, link) = ops::sk_pool_linked(ctx.tape, &u)?;
        let s = ops::reshape(ctx.tape, &s, &[n, 1, 1, self.channels])?;
        let z = self.fc1.forward(ctx, &s)?;
        let z = self.fc_bn.forward_relu(ctx, &z)?;
        let z = self.fc2.forward(ctx, &z)?;
        let z = ops::reshape(ctx.tape, &z, &[n, 2 * self.channels])?;
        ops::sk_mix_linked(ctx.tape, &u, &z, &link)
    }

    pub fn describe(&self, input: &[usize], s: &mut Summary) -> Result<Vec<usize>> {
        let u = self.conv.describe(input, s)?;
        self.bn.describe(&u, s);
        let pooled = [u[0], 1, 1, self.channels];
        let z = self.fc1.describe(&pooled, s)?;
        self.fc_bn.describe(&z, s);
        self.fc2.describe(&z, s)?;
        Ok(vec![u[0], u[1], u[2], self.channels])
    }
}
