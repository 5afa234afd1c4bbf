//! A bias-free convolution (every ResNet convolution is followed by batch norm).

use super::{Ctx, Summary};
use crate::ops::{self, conv2d::Geometry, Conv2dSpec};
use crate::params::{Init, ParamId, ParamKind, ParamStore};
use crate::{autograd::Var, Result};

#[derive(Clone, Debug)]
pub struct Conv2d {
    pub name: String,
    pub weight: ParamId,
    pub spec: Conv2dSpec,
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
}

impl Conv2d {
    /// A k×k convolution with "same" padding; weights He-normal over the fan-out, as
    /// torchvision's ResNets initialise them.
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
    ) -> Result<Self> {
        let std = (2.0 / (cout * kernel * kernel) as f64).sqrt();
        let weight = store.add(
            &super::join(name, "weight"),
            &[cout, kernel, kernel, cin],
            ParamKind::Weight,
            Init::Normal { std },
        )?;
        Ok(Conv2d {
            name: name.to_string(),
            weight,
            spec: Conv2dSpec::same(kernel, stride),
            cin,
            cout,
            kernel,
        })
    }

    pub fn forward(&self, ctx: &mut Ctx, x: &Var) -> Result<Var> {
        let _range = crate::profile::layer(&self.name);
        let w = ctx.param_as(self.weight, x.value().dtype())?;
        #[cfg(feature = "cuda")]
        if let crate::Device::Cuda(_) = x.value().device() {
            let g = Geometry::new(x.shape(), w.shape(), &self.spec)?;
            if let Some(why) = crate::ops::conv2d::cuda_limits::too_large(&g) {
                let msg = format!("layer {}: {why}", self.name);
                return Err(crate::Error::shape("conv2d", msg));
            }
        }
        if super::stem_pad::applies(x.value(), self.cin) {
            return super::stem_pad::conv2d_padded(ctx.tape, x, &w, self.spec);
        }
        ops::conv2d(ctx.tape, x, &w, self.spec)
    }

    pub fn describe(&self, input: &[usize], s: &mut Summary) -> Result<Vec<usize>> {
        let g = Geometry::new(
            input,
            &[self.cout, self.kernel, self.kernel, self.cin],
            &self.spec,
        )?;
        let params = self.cout * self.kernel * self.kernel * self.cin;
        s.push_conv(&self.name, &g, params);
        Ok(vec![g.n, g.ho, g.wo, g.cout])
    }
}
