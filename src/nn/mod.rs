//! Modules: each holds the [`ParamId`](crate::params::ParamId)s of its tensors (the values live in
//! a [`ParamStore`]) and runs its forward on a [`Tape`]. Names follow the module path, e.g.
//! `encoder.layer1.0.conv1.weight`.

mod batch_norm;
mod conv;
mod head;
mod linear;
mod resnet;
mod resnet_config;
mod sk_conv;
mod summary;

pub use batch_norm::BatchNorm;
pub use conv::Conv2d;
pub use head::ProjectionHead;
pub use linear::Linear;
pub use resnet::{Block, ResNet};
pub use resnet_config::{BlockKind, ResNetConfig};
pub use sk_conv::SkConv;
pub use summary::{LayerRow, Summary};

use crate::autograd::Tape;
use crate::params::ParamStore;

/// What a forward pass needs: the tape to record on, the parameters (mutable, because
/// train-mode batch norm updates its running statistics), and the mode.
pub struct Ctx<'a> {
    pub tape: &'a mut Tape,
    pub params: &'a mut ParamStore,
    pub train: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(tape: &'a mut Tape, params: &'a mut ParamStore, train: bool) -> Self {
        Ctx {
            tape,
            params,
            train,
        }
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
