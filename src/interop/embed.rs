//! Features of a trained network for downstream use: the encoder's representation (layer 0) or
//! the output of projection-head layer k (hidden layers after their BN + ReLU, the last one
//! after its BN, as the head computes them in training), in eval mode (BN running statistics),
//! nothing recorded. The file: `features` [N, D] f32 and `labels` [N] i64, in dataset order,
//! with the model, layer, split and class names in its metadata.

use super::st_io::{self, Named, Tensors};
use crate::autograd::{Tape, Var};
use crate::data::{Dataset, EvalTransform, Loader, LoaderConfig};
use crate::nn::{ActivationPolicy, Ctx, ProjectionHead, ResNet, ResNetConfig};
use crate::params::ParamStore;
use crate::train::{ckpt_check, model::ModelMeta, pretrain};
use crate::{checkpoint, Error, Result, Tensor};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The encoder and the first `layer` head layers of a checkpoint.
pub struct FeatureNet {
    pub encoder: ResNet,
    pub head: ProjectionHead,
    pub layer: usize,
}

impl FeatureNet {
    /// Registers the tensors the features need in `store`; `layer` must exist in the
    /// checkpoint (a classifier keeps the head only up to the layer it reads).
    pub fn new(store: &mut ParamStore, meta: &ModelMeta, layer: usize) -> Result<Self> {
        let available = if meta.stage == pretrain::STAGE {
            meta.proj_layers
        } else {
            meta.proj_layer
        };
        if layer > available {
            return Err(Error::Config(format!(
                "--layer {layer}: this {} checkpoint holds head layers 1..={available} (0 is the encoder output)",
                meta.stage
            )));
        }
        Self::from_config(
            store,
            &meta.config()?,
            meta.proj_layers,
            meta.proj_dim,
            layer,
        )
    }

    /// The same for any configuration (tests use narrow custom ones).
    pub fn from_config(
        store: &mut ParamStore,
        cfg: &ResNetConfig,
        proj_layers: usize,
        proj_dim: usize,
        layer: usize,
    ) -> Result<Self> {
        let encoder = ResNet::new(store, "encoder", cfg)?;
        let head =
            ProjectionHead::truncated(store, "head", cfg.out_dim(), proj_dim, proj_layers, layer)?;
        Ok(FeatureNet {
            encoder,
            head,
            layer,
        })
    }

    /// Reads `path`'s metadata, checks its tensors' shapes, and loads what layer `layer` needs.
    pub fn load(path: &Path, layer: usize) -> Result<(ModelMeta, Self, ParamStore)> {
        let meta = ModelMeta::read(path)?;
        let mut store = ParamStore::new(crate::DType::F32, 0);
        let net = FeatureNet::new(&mut store, &meta, layer)?;
        let names: std::collections::HashSet<String> =
            store.entries().iter().map(|e| e.name.clone()).collect();
        ckpt_check::check(path, &meta, |n| names.contains(n), false)?;
        checkpoint::load_matching(&mut store, path, |_| true)?;
        Ok((meta, net, store))
    }

    pub fn dim(&self) -> usize {
        self.head.dim_at(self.layer, self.encoder.out_dim())
    }

    pub fn forward(&self, ctx: &mut Ctx, x: &Var) -> Result<Var> {
        let h = self.encoder.forward(ctx, x)?;
        let f = self.head.forward_upto(ctx, &h, self.layer)?.pop();
        ctx.to_param_dtype(&f.expect("features"))
    }

    /// Features of a batch of NHWC images, BN in eval mode.
    pub fn embed(
        &self,
        store: &mut ParamStore,
        x: Tensor,
        policy: ActivationPolicy,
    ) -> Result<Tensor> {
        let mut tape = Tape::inference();
        let x = tape.constant(x);
        let f = self.forward(&mut policy.ctx(&mut tape, store, false), &x)?;
        Ok(f.value().clone())
    }
}

/// Features of every image of `ds` (evaluation transform at `image_size`), in dataset order,
/// and their labels.
pub fn embed_dataset(
    net: &FeatureNet,
    store: &mut ParamStore,
    ds: Arc<dyn Dataset>,
    image_size: usize,
    device: crate::Device,
    policy: ActivationPolicy,
    workers: usize,
) -> Result<(Vec<f32>, Vec<i64>)> {
    let transform = Arc::new(EvalTransform::new(crate::data::AugmentConfig::for_size(
        image_size,
    ))?);
    let cfg = LoaderConfig {
        batch_size: 256,
        views: 1,
        seed: 0,
        shuffle: false,
        workers,
        prefetch: 2,
        drop_last: false,
        indices: None,
        shard: None,
    };
    let (mut feats, mut labels) = (Vec::new(), Vec::new());
    for b in Loader::new(ds, transform, cfg)?.epoch(0) {
        let b = b?;
        let f = net.embed(store, b.views[0].to_device(device)?, policy)?;
        feats.extend(f.to_vec_f32()?);
        labels.extend(b.labels.iter().map(|&l| l as i64));
    }
    Ok((feats, labels))
}

/// Writes features [N, dim] and labels [N] atomically, with string metadata.
pub fn write(
    path: &Path,
    feats: Vec<f32>,
    labels: Vec<i64>,
    dim: usize,
    metadata: HashMap<String, String>,
) -> Result<()> {
    let n = labels.len();
    if feats.len() != n * dim {
        return Err(Error::Config(format!(
            "{} feature values for {n} labels of dimension {dim}",
            feats.len()
        )));
    }
    let mut t = Tensors::new();
    t.insert("features".into(), Named::f32(&[n, dim], feats));
    t.insert("labels".into(), Named::i64(&[n], labels));
    st_io::write(path, &t, Some(metadata))
}
