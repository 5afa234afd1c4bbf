//! The networks of the three steps, and the metadata every checkpoint carries so a later stage
//! can rebuild the architecture it holds (and refuse one that does not fit).

use crate::autograd::Var;
use crate::checkpoint;
use crate::nn::{Ctx, Linear, ProjectionHead, ResNet, ResNetConfig, StemPoolPadding};
use crate::params::ParamStore;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

const META_KEY: &str = "simclr";

/// What a checkpoint holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// The stage that wrote it: pretrain, finetune, distill, supervised, linear-eval.
    pub stage: String,
    pub model: String,
    pub image_size: usize,
    pub in_channels: usize,
    /// Layers of the pretraining projection head and its output width.
    pub proj_layers: usize,
    pub proj_dim: usize,
    /// Classifiers: the head layer the classifier reads (0 = encoder output) and the classes.
    pub proj_layer: usize,
    pub num_classes: usize,
    /// The ImageNet stem's max-pool padding; absent in checkpoints written before it existed
    /// (symmetric), "same-tf" in imported official SimCLRv2 models.
    #[serde(default)]
    pub stem_pool_padding: StemPoolPadding,
}

impl ModelMeta {
    pub fn config(&self) -> Result<ResNetConfig> {
        Ok(ResNetConfig::parse(&self.model)?
            .for_image_size(self.image_size)
            .with_in_channels(self.in_channels)
            .with_stem_pool_padding(self.stem_pool_padding))
    }

    pub fn to_metadata(&self) -> HashMap<String, String> {
        HashMap::from([(
            META_KEY.to_string(),
            serde_json::to_string(self).expect("metadata serialises"),
        )])
    }

    pub fn read(path: &Path) -> Result<Self> {
        let meta = checkpoint::read_metadata(path)?;
        let text = meta.get(META_KEY).ok_or_else(|| Error::Checkpoint {
            path: path.to_path_buf(),
            msg: "no simclr metadata: not written by this trainer".into(),
        })?;
        serde_json::from_str(text).map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            msg: format!("bad simclr metadata: {e}"),
        })
    }
}

/// Encoder + projection head, for contrastive pretraining.
pub struct SimClrNet {
    pub meta: ModelMeta,
    pub encoder: ResNet,
    pub head: ProjectionHead,
}

impl SimClrNet {
    pub fn new(store: &mut ParamStore, meta: ModelMeta) -> Result<Self> {
        let cfg = meta.config()?;
        let encoder = ResNet::new(store, "encoder", &cfg)?;
        let head = ProjectionHead::new(
            store,
            "head",
            cfg.out_dim(),
            meta.proj_dim,
            meta.proj_layers,
        )?;
        Ok(SimClrNet {
            meta,
            encoder,
            head,
        })
    }

    /// Images → projections z (not yet normalised).
    pub fn project(&self, ctx: &mut Ctx, x: &Var) -> Result<Var> {
        let h = self.encoder.forward(ctx, x)?;
        let z = self.head.forward_all(ctx, &h)?.pop().expect("head output");
        ctx.to_param_dtype(&z)
    }
}

/// Encoder, the first `proj_layer` head layers, and a linear classifier.
pub struct Classifier {
    pub meta: ModelMeta,
    pub encoder: ResNet,
    pub head: ProjectionHead,
    pub fc: Linear,
}

impl Classifier {
    pub fn new(store: &mut ParamStore, meta: ModelMeta) -> Result<Self> {
        let cfg = meta.config()?;
        let encoder = ResNet::new(store, "encoder", &cfg)?;
        let head = ProjectionHead::truncated(
            store,
            "head",
            cfg.out_dim(),
            meta.proj_dim,
            meta.proj_layers,
            meta.proj_layer,
        )?;
        let fc = Linear::new(
            store,
            "classifier",
            head.dim_at(meta.proj_layer, cfg.out_dim()),
            meta.num_classes,
            true,
        )?;
        Ok(Classifier {
            meta,
            encoder,
            head,
            fc,
        })
    }

    /// Representation fed to the classifier: encoder output, or head layer `proj_layer`.
    pub fn features(&self, ctx: &mut Ctx, x: &Var) -> Result<Var> {
        let h = self.encoder.forward(ctx, x)?;
        Ok(self
            .head
            .forward_upto(ctx, &h, self.meta.proj_layer)?
            .pop()
            .expect("features"))
    }

    pub fn logits(&self, ctx: &mut Ctx, x: &Var) -> Result<Var> {
        let f = self.features(ctx, x)?;
        let logits = self.fc.forward(ctx, &f)?;
        ctx.to_param_dtype(&logits)
    }
}

/// Saves a store with its metadata (atomically).
pub fn save(store: &ParamStore, meta: &ModelMeta, path: &Path) -> Result<()> {
    checkpoint::save(store, path, Some(meta.to_metadata()))
}

/// Checks that a checkpoint was written for `expected_model` before loading anything.
pub fn check_model(meta: &ModelMeta, expected_model: Option<&str>, path: &Path) -> Result<()> {
    if let Some(m) = expected_model {
        if m != meta.model {
            return Err(Error::Checkpoint {
                path: path.to_path_buf(),
                msg: format!("holds a {} model, but --model is {m}", meta.model),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_json(extra: &str) -> String {
        format!(
            r#"{{"stage":"pretrain","model":"r50_1x_sk1","image_size":224,"in_channels":3,
            "proj_layers":3,"proj_dim":128,"proj_layer":0,"num_classes":0{extra}}}"#
        )
    }

    #[test]
    fn stem_pool_padding_defaults_to_symmetric_and_bad_values_are_named() {
        // A checkpoint written before the key existed.
        let old: ModelMeta = serde_json::from_str(&meta_json("")).unwrap();
        assert_eq!(old.stem_pool_padding, StemPoolPadding::Symmetric);
        let tf: ModelMeta =
            serde_json::from_str(&meta_json(r#","stem_pool_padding":"same-tf""#)).unwrap();
        assert_eq!(tf.stem_pool_padding, StemPoolPadding::SameTf);
        assert_eq!(
            tf.config().unwrap().stem_pool_padding,
            StemPoolPadding::SameTf
        );
        let back: ModelMeta = serde_json::from_str(&tf.to_metadata()[META_KEY]).unwrap();
        assert_eq!(back, tf);
        let e = serde_json::from_str::<ModelMeta>(&meta_json(r#","stem_pool_padding":"tf""#))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("stem_pool_padding is 'tf'; allowed: symmetric, same-tf"),
            "{e}"
        );
    }
}
