//! LARS (layer-wise adaptive rate scaling) as SimCLRv2 uses it, per parameter tensor w with
//! gradient g:
//!
//! `g ← g + wd·w;  trust = η·‖w‖/‖g‖ if both norms > 0 else 1;  v ← m·v + lr·trust·g;  w ← w − v`.
//!
//! Excluded tensors (by default biases and BN γ/β, [`ParamKind::excluded_from_lars`]) get
//! neither weight decay nor the trust ratio: `v ← m·v + lr·g`. The zero-norm rule keeps freshly
//! zero-initialised tensors (the last BN γ of each block, if not excluded) and tensors without
//! a gradient signal from dividing by zero.
//!
//! A step runs in two phases, all norms first ([`lars_norms`]) and then all updates, so a fused
//! multi-tensor GPU kernel can replace either phase without changing the optimizer.

use super::DeviceLr;
use crate::ops::elementwise::{add_forward, mul_forward, scale_forward, sub_forward, sum_all};
use crate::params::{ParamId, ParamKind, ParamStore};
use crate::{Error, Result, Tensor};
use std::collections::HashMap;

/// Prefix of the velocity tensors in a checkpoint: `lars.velocity.<param name>`.
#[cfg(feature = "cuda")]
use super::cuda::LearningRate as Rate;

/// The rate of a step (without the CUDA backend, only a host value).
#[cfg(not(feature = "cuda"))]
#[derive(Clone, Copy)]
enum Rate {
    Host(f64),
}

pub const VELOCITY_PREFIX: &str = "lars.velocity.";

/// Which parameters skip weight decay and the trust ratio, given name and kind.
pub type ExclusionRule = fn(&str, ParamKind) -> bool;

/// The default rule of SimCLRv2: biases and BN parameters are excluded.
pub fn exclude_bias_and_bn(_name: &str, kind: ParamKind) -> bool {
    kind.excluded_from_lars()
}

#[derive(Clone, Copy, Debug)]
pub struct LarsConfig {
    pub momentum: f64,
    pub weight_decay: f64,
    /// Trust coefficient η.
    pub eta: f64,
    pub exclude: ExclusionRule,
}

impl Default for LarsConfig {
    /// m = 0.9, η = 0.001, wd = 1e-6 (the TF2 default), biases and BN excluded.
    fn default() -> Self {
        LarsConfig {
            momentum: 0.9,
            weight_decay: 1e-6,
            eta: 0.001,
            exclude: exclude_bias_and_bn,
        }
    }
}

/// (‖w‖, ‖g + wd·w‖) of each (w, g, wd); wd = 0 for excluded tensors. The norm of g is taken
/// after weight decay, as the trust ratio uses it.
pub fn lars_norms(items: &[(&Tensor, &Tensor, f64)]) -> Result<Vec<(f64, f64)>> {
    let norm = |t: &Tensor| -> Result<f64> { Ok(sum_all(&mul_forward(t, t)?)?.item()?.sqrt()) };
    items
        .iter()
        .map(|&(w, g, wd)| Ok((norm(w)?, norm(&decayed(w, g, wd)?)?)))
        .collect()
}

fn decayed(w: &Tensor, g: &Tensor, wd: f64) -> Result<Tensor> {
    if wd == 0.0 {
        Ok(g.clone())
    } else {
        add_forward(g, &scale_forward(w, wd)?)
    }
}

/// trust = η·‖w‖/‖g‖ when both norms are positive, else 1.
pub fn trust_ratio(eta: f64, w_norm: f64, g_norm: f64) -> f64 {
    if w_norm > 0.0 && g_norm > 0.0 {
        eta * w_norm / g_norm
    } else {
        1.0
    }
}

pub struct Lars {
    pub config: LarsConfig,
    velocity: HashMap<ParamId, Tensor>,
    /// The GPU step's resident tensor tables.
    #[cfg(feature = "cuda")]
    tables: super::cuda::LarsTables,
}

impl Lars {
    pub fn new(config: LarsConfig) -> Self {
        Lars {
            config,
            velocity: HashMap::new(),
            #[cfg(feature = "cuda")]
            tables: Default::default(),
        }
    }

    fn excluded(&self, store: &ParamStore, id: ParamId) -> bool {
        (self.config.exclude)(store.name(id), store.kind(id))
    }

    /// Updates every trainable parameter that has a gradient with learning rate `lr` (from the
    /// schedule), then clears the gradients.
    pub fn step(&mut self, store: &mut ParamStore, lr: f64) -> Result<()> {
        self.step_at(store, Rate::Host(lr))
    }

    /// One step at the device schedule's current rate, then the schedule's counter advanced:
    /// the whole update stays on the device, so a step replayed as a CUDA graph takes the
    /// rate of its own step. Needs f32 weights on the GPU (the multi-tensor kernels).
    pub fn step_scheduled(&mut self, store: &mut ParamStore, lr: &DeviceLr) -> Result<()> {
        #[cfg(feature = "cuda")]
        {
            self.step_at(store, Rate::Device(lr))?;
            lr.advance()
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = store;
            match *lr {}
        }
    }

    fn step_at(&mut self, store: &mut ParamStore, lr: Rate) -> Result<()> {
        let _phase = crate::profile::optimizer_step();
        let ids: Vec<ParamId> = store
            .ids()
            .filter(|&id| store.is_trainable(id) && store.grad(id).is_some())
            .collect();
        let wds: Vec<f64> = ids
            .iter()
            .map(|&id| {
                if self.excluded(store, id) {
                    0.0
                } else {
                    self.config.weight_decay
                }
            })
            .collect();
        #[cfg(feature = "cuda")]
        if on_gpu_in_f32(store, &ids)? {
            return self.step_cuda(store, &ids, &wds, lr);
        }
        let lr = host_rate(lr, ids.is_empty())?;
        // Phase 1: every norm (only the non-excluded tensors need them).
        let mut items = Vec::new();
        for (&id, &wd) in ids.iter().zip(&wds) {
            if !self.excluded(store, id) {
                items.push((
                    store.value(id)?,
                    store.grad(id).expect("filtered above"),
                    wd,
                ));
            }
        }
        let mut norms = lars_norms(&items)?.into_iter();
        // Phase 2: every update.
        for (&id, &wd) in ids.iter().zip(&wds) {
            let trust = if self.excluded(store, id) {
                1.0
            } else {
                let (wn, gn) = norms.next().expect("one norm pair per included tensor");
                trust_ratio(self.config.eta, wn, gn)
            };
            let w = store.value(id)?.clone();
            let g = decayed(&w, store.grad(id).expect("filtered above"), wd)?;
            let step = scale_forward(&g, lr * trust)?;
            let v = match self.velocity.get(&id) {
                Some(v) => add_forward(&scale_forward(v, self.config.momentum)?, &step)?,
                None => step,
            };
            store.set_value(id, sub_forward(&w, &v)?)?;
            self.velocity.insert(id, v);
        }
        store.zero_grads();
        Ok(())
    }

    /// Both phases as two multi-tensor launches (fp32 master weights on one GPU).
    #[cfg(feature = "cuda")]
    fn step_cuda(
        &mut self,
        store: &mut ParamStore,
        ids: &[ParamId],
        wds: &[f64],
        lr: Rate,
    ) -> Result<()> {
        use super::cuda::{lars_multi_tensor_step, LarsSlot};
        let mut vels = Vec::with_capacity(ids.len());
        for &id in ids {
            let w = store.value(id)?;
            vels.push(match self.velocity.remove(&id) {
                Some(v) => v,
                // Zero velocity: m·0 + step equals the CPU path's first step.
                None => Tensor::zeros(w.shape(), w.dtype(), w.device())?,
            });
        }
        // Weights are updated in place: take them out of the store for the step (their
        // gradients stay there) and put them back, same buffers, afterwards.
        let mut weights = Vec::with_capacity(ids.len());
        for &id in ids {
            weights.push(std::mem::replace(
                store.value_mut(id)?,
                Tensor::scalar(0.0, crate::DType::F32)?,
            ));
        }
        let stepped = {
            let mut slots = Vec::with_capacity(ids.len());
            let parts = ids
                .iter()
                .zip(wds)
                .zip(weights.iter_mut())
                .zip(vels.iter_mut());
            for (((&id, &wd), w), v) in parts {
                slots.push(LarsSlot {
                    w,
                    g: store.grad(id).expect("filtered in step"),
                    v,
                    weight_decay: wd,
                    excluded: self.excluded(store, id),
                });
            }
            let (m, eta) = (self.config.momentum, self.config.eta);
            lars_multi_tensor_step(&mut slots, lr, m, eta, &mut self.tables)
        };
        for ((&id, w), v) in ids.iter().zip(weights).zip(vels) {
            *store.value_mut(id)? = w;
            self.velocity.insert(id, v);
        }
        stepped?;
        store.zero_grads();
        Ok(())
    }

    /// The velocities as named tensors (`lars.velocity.<param name>`), sorted by name.
    pub fn state(&self, store: &ParamStore) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .velocity
            .iter()
            .map(|(&id, v)| (format!("{VELOCITY_PREFIX}{}", store.name(id)), v.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Restores velocities from named tensors (other names are ignored, so a whole checkpoint
    /// can be passed). Replaces the current state; tensors are moved to each parameter's
    /// device and dtype. A velocity for an unknown parameter or of the wrong shape is an error.
    pub fn load_state(
        &mut self,
        store: &ParamStore,
        tensors: &HashMap<String, Tensor>,
    ) -> Result<()> {
        let mut velocity = HashMap::new();
        for (name, t) in tensors {
            let Some(pname) = name.strip_prefix(VELOCITY_PREFIX) else {
                continue;
            };
            let id = store.find(pname).ok_or_else(|| {
                Error::Config(format!(
                    "lars: velocity '{name}' names no parameter of the model"
                ))
            })?;
            let p = store.value(id)?;
            if t.shape() != p.shape() {
                return Err(Error::shape(
                    "lars",
                    format!(
                        "velocity '{name}' has shape {:?}, parameter has {:?}",
                        t.shape(),
                        p.shape()
                    ),
                ));
            }
            velocity.insert(id, t.to_dtype(p.dtype())?.to_device(p.device())?);
        }
        self.velocity = velocity;
        Ok(())
    }
}

/// The rate of the CPU path: a host value (a device schedule has none to give, which is an
/// error unless there is nothing to update).
fn host_rate(lr: Rate, nothing_to_update: bool) -> Result<f64> {
    #[cfg(feature = "cuda")]
    return match lr {
        Rate::Host(v) => Ok(v),
        Rate::Device(_) if nothing_to_update => Ok(0.0),
        Rate::Device(_) => Err(Error::device(
            "lars step_scheduled",
            "the device schedule needs f32 weights on the GPU",
        )),
    };
    #[cfg(not(feature = "cuda"))]
    {
        let _ = nothing_to_update;
        let Rate::Host(v) = lr;
        Ok(v)
    }
}

/// Whether the multi-tensor GPU step applies: every updated tensor is an f32 CUDA tensor.
#[cfg(feature = "cuda")]
fn on_gpu_in_f32(store: &ParamStore, ids: &[ParamId]) -> Result<bool> {
    for &id in ids {
        let w = store.value(id)?;
        if !matches!(w.device(), crate::Device::Cuda(_)) || w.dtype() != crate::DType::F32 {
            return Ok(false);
        }
    }
    Ok(!ids.is_empty())
}

#[cfg(test)]
#[path = "lars_tests.rs"]
mod tests;
