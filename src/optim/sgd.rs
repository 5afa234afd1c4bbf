//! Plain SGD with optional momentum and weight decay (PyTorch's formulation):
//! g ← g + wd·w; v ← m·v + g; w ← w − lr·v.

use crate::ops::elementwise::{add_forward, scale_forward, sub_forward};
use crate::params::{ParamId, ParamStore};
use crate::{Result, Tensor};
use std::collections::HashMap;

pub struct Sgd {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    velocity: HashMap<ParamId, Tensor>,
}

impl Sgd {
    pub fn new(lr: f64, momentum: f64, weight_decay: f64) -> Self {
        Sgd {
            lr,
            momentum,
            weight_decay,
            velocity: HashMap::new(),
        }
    }

    /// Updates every trainable parameter that has a gradient, then clears the gradients.
    pub fn step(&mut self, store: &mut ParamStore) -> Result<()> {
        let ids: Vec<ParamId> = store.ids().filter(|&id| store.is_trainable(id)).collect();
        for id in ids {
            let Some(g) = store.grad(id).cloned() else {
                continue;
            };
            let w = store.value(id)?.clone();
            let mut g = g;
            if self.weight_decay != 0.0 {
                g = add_forward(&g, &scale_forward(&w, self.weight_decay)?)?;
            }
            if self.momentum != 0.0 {
                g = match self.velocity.get(&id) {
                    Some(v) => add_forward(&scale_forward(v, self.momentum)?, &g)?,
                    None => g,
                };
                self.velocity.insert(id, g.clone());
            }
            store.set_value(id, sub_forward(&w, &scale_forward(&g, self.lr)?)?)?;
        }
        store.zero_grads();
        Ok(())
    }
}
