//! Exponential moving average of parameters, for SimCLRv2's MoCo-style momentum ("memory")
//! network: `target ← m·target + (1 − m)·online` for every tensor of the target store, matched
//! to the online store by name.
//!
//! BN running statistics are *copied* from the online network by default ([`BufferRule::Copy`]):
//! the momentum network only produces projections in train mode (batch statistics), so its
//! running statistics are never used for its outputs, and copying keeps them equal to the
//! online network's. [`BufferRule::Ema`] averages them like the weights instead.

use crate::ops::elementwise::{add_forward, scale_forward};
use crate::params::ParamStore;
use crate::{Error, Result};

/// How BN running statistics (the non-trainable tensors) follow the online network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BufferRule {
    #[default]
    Copy,
    Ema,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ema {
    pub momentum: f64,
    pub buffers: BufferRule,
}

impl Default for Ema {
    /// Momentum 0.999 (the paper), buffers copied.
    fn default() -> Self {
        Ema {
            momentum: 0.999,
            buffers: BufferRule::Copy,
        }
    }
}

impl Ema {
    pub fn new(momentum: f64, buffers: BufferRule) -> Result<Self> {
        if !(0.0..=1.0).contains(&momentum) {
            return Err(Error::Config(format!(
                "ema: momentum must lie in [0, 1], got {momentum}"
            )));
        }
        Ok(Ema { momentum, buffers })
    }

    /// Moves every tensor of `target` towards the same-named tensor of `online`. The online
    /// store may hold more tensors (a classifier the momentum network lacks); a target tensor
    /// with no online counterpart, or of another shape, is an error, since it would silently
    /// stop following. Returns how many tensors were updated.
    pub fn update(&self, target: &mut ParamStore, online: &ParamStore) -> Result<usize> {
        let ids: Vec<_> = target.ids().collect();
        #[cfg(feature = "cuda")]
        if let Some(pairs) = self.gpu_pairs(target, online, &ids)? {
            return self.update_cuda(target, online, &pairs);
        }
        for &id in &ids {
            let name = target.name(id).to_string();
            let src = online.find(&name).ok_or_else(|| {
                Error::Config(format!(
                    "ema: target tensor '{name}' has no counterpart in the online network"
                ))
            })?;
            let o = online.value(src)?;
            let t = target.value(id)?;
            if o.shape() != t.shape() {
                return Err(Error::shape(
                    "ema",
                    format!(
                        "'{name}': target shape {:?}, online shape {:?}",
                        t.shape(),
                        o.shape()
                    ),
                ));
            }
            let copy = !target.is_trainable(id) && self.buffers == BufferRule::Copy;
            let new = if copy {
                o.clone()
            } else {
                add_forward(
                    &scale_forward(t, self.momentum)?,
                    &scale_forward(o, 1.0 - self.momentum)?,
                )?
            };
            target.set_value(id, new)?;
        }
        Ok(ids.len())
    }

    /// (target, online) ids when every tensor of both sides is on a GPU in one dtype (the
    /// multi-tensor path), after the same matching checks as the per-tensor path; else None.
    #[cfg(feature = "cuda")]
    fn gpu_pairs(
        &self,
        target: &ParamStore,
        online: &ParamStore,
        ids: &[crate::params::ParamId],
    ) -> Result<Option<Vec<(crate::params::ParamId, crate::params::ParamId)>>> {
        let mut pairs = Vec::with_capacity(ids.len());
        let mut dtype = None;
        for &id in ids {
            let name = target.name(id);
            let Some(src) = online.find(name) else {
                return Ok(None); // the per-tensor path reports the error
            };
            let (t, o) = (target.value(id)?, online.value(src)?);
            let gpu = |x: &crate::Tensor| matches!(x.device(), crate::Device::Cuda(_));
            let same = t.shape() == o.shape() && t.dtype() == o.dtype();
            if !(gpu(t) && gpu(o) && same && *dtype.get_or_insert(t.dtype()) == t.dtype()) {
                return Ok(None);
            }
            pairs.push((id, src));
        }
        Ok((!pairs.is_empty()).then_some(pairs))
    }

    /// All tensors in one launch; copied buffers get momentum 0.
    #[cfg(feature = "cuda")]
    fn update_cuda(
        &self,
        target: &mut ParamStore,
        online: &ParamStore,
        pairs: &[(crate::params::ParamId, crate::params::ParamId)],
    ) -> Result<usize> {
        let mut items = Vec::with_capacity(pairs.len());
        for &(id, src) in pairs {
            let copy = !target.is_trainable(id) && self.buffers == BufferRule::Copy;
            let m = if copy { 0.0 } else { self.momentum };
            items.push((target.value(id)?, online.value(src)?, m));
        }
        let new = super::cuda::ema_multi_tensor_update(&items)?;
        for (&(id, _), t) in pairs.iter().zip(new) {
            target.set_value(id, t)?;
        }
        Ok(pairs.len())
    }

    /// Makes the target an exact copy of the online network (initialisation of the momentum
    /// network), with the same matching rules as [`Ema::update`].
    pub fn sync(target: &mut ParamStore, online: &ParamStore) -> Result<usize> {
        Ema::new(0.0, BufferRule::Copy)?.update(target, online)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{Init, ParamKind};
    use crate::DType;

    fn store(seed: u64, extra: bool) -> ParamStore {
        let mut s = ParamStore::new(DType::F64, seed);
        s.add("w", &[2, 3], ParamKind::Weight, Init::Normal { std: 1.0 })
            .unwrap();
        s.add(
            "bn.running_mean",
            &[3],
            ParamKind::BnRunningMean,
            Init::Normal { std: 1.0 },
        )
        .unwrap();
        if extra {
            s.add("fc.weight", &[4], ParamKind::Weight, Init::Ones)
                .unwrap();
        }
        s
    }

    fn vals(s: &ParamStore, name: &str) -> Vec<f64> {
        s.value(s.find(name).unwrap())
            .unwrap()
            .to_vec_f64()
            .unwrap()
    }

    #[test]
    fn weights_average_and_buffers_follow_the_rule() {
        let online = store(1, true);
        for rule in [BufferRule::Copy, BufferRule::Ema] {
            let mut target = store(2, false);
            let (t0, o) = (vals(&target, "w"), vals(&online, "w"));
            let ema = Ema::new(0.9, rule).unwrap();
            assert_eq!(ema.update(&mut target, &online).unwrap(), 2);
            for ((a, b), c) in vals(&target, "w").iter().zip(&t0).zip(&o) {
                assert!((a - (0.9 * b + 0.1 * c)).abs() < 1e-15);
            }
            let rm = vals(&target, "bn.running_mean");
            let want = vals(&online, "bn.running_mean");
            match rule {
                BufferRule::Copy => assert_eq!(rm, want),
                BufferRule::Ema => assert_ne!(rm, want),
            }
        }
    }

    #[test]
    fn sync_copies_and_mismatches_are_errors() {
        let online = store(1, false);
        let mut target = store(2, false);
        Ema::sync(&mut target, &online).unwrap();
        assert_eq!(vals(&target, "w"), vals(&online, "w"));
        let mut bigger = store(3, true);
        let e = Ema::default()
            .update(&mut bigger, &online)
            .unwrap_err()
            .to_string();
        assert!(e.contains("fc.weight"), "{e}");
        let mut wrong = ParamStore::new(DType::F64, 0);
        wrong
            .add("w", &[3, 2], ParamKind::Weight, Init::Zeros)
            .unwrap();
        assert!(Ema::default().update(&mut wrong, &online).is_err());
        assert!(Ema::new(1.5, BufferRule::Copy).is_err());
    }
}
