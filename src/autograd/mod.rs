//! A thin reverse-mode autograd: an explicit [`Tape`] records, for each op, which variables it
//! read and a closure computing their gradients. Tensors know nothing of the tape.
//!
//! Gradients of activations are *written* (the first contribution is stored, later ones from
//! other consumers are added); gradients of parameters *accumulate* into the [`ParamStore`]
//! across backward passes until the optimizer zeroes them.

mod saved;

pub use saved::{Recompute, Saved};

use crate::params::{ParamId, ParamStore};
use crate::{ops, Error, Result, Tensor};
use std::collections::HashMap;
use std::rc::Rc;

pub type VarId = usize;

/// A value on the tape: a tensor plus the id its gradient is tracked under.
#[derive(Clone, Debug)]
pub struct Var {
    id: VarId,
    value: Tensor,
    requires_grad: bool,
    /// How to recompute `value` in backward instead of keeping it (see [`Saved`]).
    recompute: Option<Rc<Recompute>>,
}

impl Var {
    pub fn value(&self) -> &Tensor {
        &self.value
    }
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }
    pub fn id(&self) -> VarId {
        self.id
    }
    pub fn requires_grad(&self) -> bool {
        self.requires_grad
    }
    /// Marks the value as recomputable by `r` (ops that read it save the recipe instead).
    pub fn with_recompute(mut self, r: Rc<Recompute>) -> Var {
        self.recompute = Some(r);
        self
    }
}

/// Computes the gradients of an op's inputs from the gradient of its output. The flags say
/// which inputs need one; the result has one entry per input.
pub type BackwardFn = Box<dyn FnOnce(&Tensor, &[bool]) -> Result<Vec<Option<Tensor>>>>;

struct Node {
    op: &'static str,
    inputs: Vec<VarId>,
    needs: Vec<bool>,
    output: VarId,
    backward: BackwardFn,
    /// The module that recorded it, for the profiler's per-layer backward times.
    layer: Option<crate::profile::LayerTag>,
}

pub struct Tape {
    recording: bool,
    recompute: bool,
    next_id: VarId,
    nodes: Vec<Node>,
    param_leaves: Vec<(VarId, ParamId)>,
}

impl Default for Tape {
    fn default() -> Self {
        Tape::new()
    }
}

/// Gradients of the leaf variables (inputs created with [`Tape::leaf`]) after a backward pass.
#[derive(Default, Debug)]
pub struct Gradients {
    by_var: HashMap<VarId, Tensor>,
}

impl Gradients {
    pub fn get(&self, v: &Var) -> Option<&Tensor> {
        self.by_var.get(&v.id)
    }
}

impl Tape {
    /// A tape that records ops for a backward pass.
    pub fn new() -> Self {
        Tape {
            recording: true,
            recompute: false,
            next_id: 0,
            nodes: Vec::new(),
            param_leaves: Vec::new(),
        }
    }

    /// Inference mode: ops run, nothing is recorded, no activation is kept alive.
    pub fn inference() -> Self {
        Tape {
            recording: false,
            ..Tape::new()
        }
    }

    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// Recompute cheap activations (BN + ReLU outputs) in backward instead of keeping them.
    pub fn set_recompute(&mut self, on: bool) {
        self.recompute = on;
    }

    /// Whether ops should attach recipes to their outputs (recording, with recomputation on).
    pub fn recomputes(&self) -> bool {
        self.recording && self.recompute
    }

    /// What an op reading `v` keeps for its backward: the recipe if `v` has one, else `v`.
    pub fn save(&self, v: &Var) -> Saved {
        match &v.recompute {
            Some(r) if self.recompute => Saved::Recompute(r.clone()),
            _ => Saved::Value(v.value.clone()),
        }
    }

    /// Number of recorded ops (for tests and profiling).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn fresh(&mut self, value: Tensor, requires_grad: bool) -> Var {
        let id = self.next_id;
        self.next_id += 1;
        Var {
            id,
            value,
            requires_grad,
            recompute: None,
        }
    }

    /// A value that needs no gradient (data, labels).
    pub fn constant(&mut self, value: Tensor) -> Var {
        self.fresh(value, false)
    }

    /// An input whose gradient is wanted: it appears in the [`Gradients`] of `backward`.
    pub fn leaf(&mut self, value: Tensor) -> Var {
        let r = self.recording;
        self.fresh(value, r)
    }

    /// A parameter read from the store; its gradient accumulates into the store on backward.
    pub fn param(&mut self, store: &ParamStore, id: ParamId) -> Result<Var> {
        let value = store.value(id)?.clone();
        let requires = self.recording && store.is_trainable(id);
        let v = self.fresh(value, requires);
        if requires {
            self.param_leaves.push((v.id, id));
        }
        Ok(v)
    }

    /// Records an op's output. The closure is kept only when recording and some input needs a
    /// gradient; otherwise the output is a constant and the closure (with what it saved) is dropped.
    pub fn record(
        &mut self,
        op: &'static str,
        inputs: &[&Var],
        output: Tensor,
        backward: impl FnOnce(&Tensor, &[bool]) -> Result<Vec<Option<Tensor>>> + 'static,
    ) -> Var {
        let needs: Vec<bool> = inputs.iter().map(|v| v.requires_grad).collect();
        if !self.recording || !needs.iter().any(|&b| b) {
            return self.fresh(output, false);
        }
        let out = self.fresh(output, true);
        self.nodes.push(Node {
            op,
            inputs: inputs.iter().map(|v| v.id).collect(),
            needs,
            output: out.id,
            backward: Box::new(backward),
            layer: crate::profile::current_layer(),
        });
        out
    }

    /// Backward from a scalar loss (seed gradient 1).
    pub fn backward(self, loss: &Var, store: &mut ParamStore) -> Result<Gradients> {
        if loss.value.numel() != 1 {
            return Err(Error::Autograd(format!(
                "backward needs a scalar loss, got shape {:?}; use backward_from with a seed gradient",
                loss.shape()
            )));
        }
        let seed = ops::elementwise::full_like(&loss.value, 1.0)?;
        self.backward_from(&[(loss, seed)], store)
    }

    /// Backward from any outputs with given seed gradients (e.g. the gradient of a loss with
    /// respect to cached projections, when training in micro-batches).
    pub fn backward_from(
        self,
        roots: &[(&Var, Tensor)],
        store: &mut ParamStore,
    ) -> Result<Gradients> {
        self.backward_with(roots, store, &mut |_, _| Ok(()))
    }

    /// As [`Tape::backward_from`], calling `on_final(id, store)` as soon as parameter `id`'s
    /// gradient is complete in `store` (after the earliest op reading it has run backward), while
    /// backward goes on: what data parallelism needs to start reducing a bucket of gradients
    /// early. A parameter read by no op that needs its gradient is final at the start. Every
    /// parameter read on the tape is reported exactly once; gradients accumulate into the store
    /// in the same order as without the hook.
    pub fn backward_with(
        self,
        roots: &[(&Var, Tensor)],
        store: &mut ParamStore,
        on_final: &mut dyn FnMut(ParamId, &mut ParamStore) -> Result<()>,
    ) -> Result<Gradients> {
        if !self.recording {
            return Err(Error::Autograd("backward on an inference-mode tape".into()));
        }
        let _phase = crate::profile::phase(crate::profile::Phase::Backward);
        let mut grads: HashMap<VarId, Tensor> = HashMap::new();
        for (v, g) in roots {
            if g.shape() != v.shape() {
                return Err(Error::Autograd(format!(
                    "seed gradient of shape {:?} for a variable of shape {:?}",
                    g.shape(),
                    v.shape()
                )));
            }
            accumulate(&mut grads, v.id, g.clone())?;
        }
        let finals = Finals::new(&self.nodes, &self.param_leaves);
        let mut pending = finals.pending.clone();
        let mut finish =
            |pid: ParamId, grads: &mut HashMap<VarId, Tensor>, store: &mut ParamStore| {
                for (vid, p) in &self.param_leaves {
                    if *p == pid {
                        if let Some(g) = grads.remove(vid) {
                            store.accumulate_grad(pid, &g)?;
                        }
                    }
                }
                on_final(pid, store)
            };
        for &pid in &finals.at_start {
            finish(pid, &mut grads, store)?;
        }
        let n = self.nodes.len();
        for (back, node) in self.nodes.into_iter().rev().enumerate() {
            if let Some(gout) = grads.remove(&node.output) {
                let range = crate::profile::backward(node.op, node.layer);
                let gins = (node.backward)(&gout, &node.needs)?;
                drop(range);
                if gins.len() != node.inputs.len() {
                    return Err(Error::Autograd(format!(
                        "{}: backward returned the wrong number of gradients",
                        node.op
                    )));
                }
                for ((id, g), need) in node.inputs.iter().zip(gins).zip(&node.needs) {
                    if let (Some(g), true) = (g, need) {
                        accumulate(&mut grads, *id, g)?;
                    }
                }
            }
            for &pid in &finals.after[n - 1 - back] {
                let left = pending.get_mut(&pid).expect("a pending parameter");
                *left -= 1;
                if *left == 0 {
                    finish(pid, &mut grads, store)?;
                }
            }
        }
        Ok(Gradients { by_var: grads })
    }
}

/// When each parameter's gradient is complete: its tape variables' last use in backward order
/// (the earliest node reading them).
struct Finals {
    /// Parameters no node reads.
    at_start: Vec<ParamId>,
    /// after[i]: parameters one of whose variables is done once node i has run backward.
    after: Vec<Vec<ParamId>>,
    /// Variables still to finish per parameter.
    pending: HashMap<ParamId, usize>,
}

impl Finals {
    fn new(nodes: &[Node], leaves: &[(VarId, ParamId)]) -> Finals {
        let mut first: HashMap<VarId, usize> = HashMap::new();
        for (i, node) in nodes.iter().enumerate() {
            for (id, need) in node.inputs.iter().zip(&node.needs) {
                if *need {
                    first.entry(*id).or_insert(i);
                }
            }
        }
        let mut f = Finals {
            at_start: Vec::new(),
            after: vec![Vec::new(); nodes.len()],
            pending: HashMap::new(),
        };
        let mut order: Vec<ParamId> = Vec::new();
        for (vid, pid) in leaves {
            if !f.pending.contains_key(pid) {
                order.push(*pid);
            }
            match first.get(vid) {
                Some(&i) => {
                    *f.pending.entry(*pid).or_insert(0) += 1;
                    f.after[i].push(*pid);
                }
                None => {
                    f.pending.entry(*pid).or_insert(0);
                }
            }
        }
        f.at_start = order.into_iter().filter(|p| f.pending[p] == 0).collect();
        f
    }
}

fn accumulate(grads: &mut HashMap<VarId, Tensor>, id: VarId, g: Tensor) -> Result<()> {
    match grads.remove(&id) {
        Some(prev) => {
            grads.insert(id, ops::elementwise::add_forward(&prev, &g)?);
        }
        None => {
            grads.insert(id, g);
        }
    }
    Ok(())
}
