//! Modules: each holds the [`ParamId`](crate::params::ParamId)s of its tensors (the values live in
//! a [`ParamStore`]) and runs its forward on a [`Tape`]. Names follow the module path, e.g.
//! `encoder.layer1.0.conv1.weight`.

mod batch_norm;
mod conv;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
mod head;
mod linear;
mod resnet;
mod resnet_config;
mod sk_conv;
mod stem_pad;
mod stem_pool;
mod summary;

pub use batch_norm::BatchNorm;
pub use conv::Conv2d;
pub use head::ProjectionHead;
pub use linear::Linear;
pub use resnet::{Block, Middle, ResNet};
pub use resnet_config::{BlockKind, ResNetConfig};
pub use sk_conv::SkConv;
/// The channels the RGB stem's convolution runs with on a GPU (zero-padded from 3).
pub use stem_pad::PADDED_CHANNELS as STEM_CHANNELS_ON_GPU;
pub use stem_pool::StemPoolPadding;
pub use summary::{LayerRow, Summary};

use crate::autograd::{Tape, Var};
use crate::params::{ParamId, ParamStore};
use crate::{DType, Result};

/// What a forward pass needs: the tape to record on, the parameters (mutable, because
/// train-mode batch norm updates its running statistics), the mode, and the data-parallel
/// group whose ranks share batch-norm statistics (none: a world of one).
pub struct Ctx<'a> {
    pub tape: &'a mut Tape,
    pub params: &'a mut ParamStore,
    pub train: bool,
    /// The activations' dtype (mixed precision), if not the parameters' own: images are cast
    /// to it on entry, weights on use, and outputs back to the parameters' dtype.
    pub compute: Option<DType>,
    pub comm: Option<crate::comm::Comm>,
}

impl<'a> Ctx<'a> {
    pub fn new(tape: &'a mut Tape, params: &'a mut ParamStore, train: bool) -> Self {
        Ctx {
            tape,
            params,
            train,
            compute: None,
            comm: None,
        }
    }

    /// Train-mode batch norm synchronises its statistics across `comm`'s ranks.
    pub fn with_comm(mut self, comm: crate::comm::Comm) -> Self {
        self.comm = Some(comm);
        self
    }

    /// Runs activations in `dtype` (bf16 on the GPU) with the parameters as master copies.
    pub fn with_compute(mut self, dtype: Option<DType>) -> Self {
        self.compute = dtype;
        self
    }

    /// Parameter `id` on the tape in `dtype`: a recorded cast when the master copy differs.
    pub fn param_as(&mut self, id: ParamId, dtype: DType) -> Result<Var> {
        let p = self.tape.param(self.params, id)?;
        crate::ops::elementwise::cast(self.tape, &p, dtype)
    }

    /// `x` in the compute dtype (model inputs).
    pub fn to_compute(&mut self, x: &Var) -> Result<Var> {
        match self.compute {
            Some(dt) => crate::ops::elementwise::cast(self.tape, x, dt),
            None => Ok(x.clone()),
        }
    }

    /// `x` back in the parameters' dtype (model outputs, before the loss).
    pub fn to_param_dtype(&mut self, x: &Var) -> Result<Var> {
        let dt = self.params.dtype();
        crate::ops::elementwise::cast(self.tape, x, dt)
    }
}

/// How a step computes and keeps its activations: in which dtype (mixed precision) and whether
/// cheap ones (BN + ReLU outputs) are recomputed in backward rather than kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActivationPolicy {
    pub compute: Option<DType>,
    pub recompute: bool,
}

impl ActivationPolicy {
    /// A recording tape that follows the policy.
    pub fn tape(&self) -> Tape {
        let mut t = Tape::new();
        t.set_recompute(self.recompute);
        t
    }

    /// The context for a forward on `tape` under this policy.
    pub fn ctx<'a>(&self, tape: &'a mut Tape, params: &'a mut ParamStore, train: bool) -> Ctx<'a> {
        Ctx::new(tape, params, train).with_compute(self.compute)
    }
}

/// Joins a module path and a child name.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}
