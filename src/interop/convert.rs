//! Whole-file conversions between our checkpoints and torchvision state dicts (see
//! [`super::torchvision`] for which networks map). An imported torchvision encoder becomes a
//! pretraining checkpoint whose projection head is freshly initialised (torchvision has none):
//! fine-tune it from the encoder output (`--proj-layer 0`).

use super::st_io;
use super::torchvision;
use crate::nn::ResNetConfig;
use crate::params::ParamStore;
use crate::train::model::{self, Classifier, ModelMeta, SimClrNet};
use crate::train::{ckpt_check, pretrain};
use crate::{checkpoint, Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// What an export wrote.
pub struct Exported {
    pub model: String,
    pub tensors: usize,
    pub with_fc: bool,
}

/// Builds the network a checkpoint describes and loads all of it.
fn load_checkpoint(path: &Path) -> Result<(ModelMeta, ParamStore)> {
    let meta = ModelMeta::read(path)?;
    ckpt_check::check(path, &meta, |_| true, true)?;
    let mut store = ParamStore::new(crate::DType::F32, 0);
    if meta.stage == pretrain::STAGE {
        SimClrNet::new(&mut store, meta.clone())?;
    } else {
        Classifier::new(&mut store, meta.clone())?;
    }
    checkpoint::load(&mut store, path)?;
    Ok((meta, store))
}

/// Writes the encoder of checkpoint `from` (and its classifier as `fc`, when it reads the
/// encoder output) as a torchvision ResNet state dict in safetensors.
pub fn export_torchvision(from: &Path, to: &Path) -> Result<Exported> {
    let meta = ModelMeta::read(from)?;
    torchvision::check_mappable(&meta.config()?).map_err(|e| Error::Checkpoint {
        path: from.to_path_buf(),
        msg: format!("cannot be exported to torchvision: {e}"),
    })?;
    let (meta, store) = load_checkpoint(from)?;
    let with_fc = meta.stage != pretrain::STAGE && meta.proj_layer == 0;
    let tensors = torchvision::export(&store, with_fc)?;
    let info = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("simclr_model".to_string(), meta.model.clone()),
    ]);
    st_io::write(to, &tensors, Some(info))?;
    Ok(Exported {
        model: meta.model,
        tensors: tensors.len(),
        with_fc,
    })
}

/// The architecture a torchvision state dict holds: blocks per stage and stem width.
pub fn infer_model(tv: &st_io::Tensors, file: &Path) -> Result<String> {
    let bad = |msg: String| Error::Checkpoint {
        path: file.to_path_buf(),
        msg,
    };
    let conv1 = tv.get("conv1.weight").ok_or_else(|| {
        bad("no 'conv1.weight': not a torchvision ResNet state dict (keys like conv1.weight, layer1.0.conv1.weight)".into())
    })?;
    let mut layers = [0usize; 4];
    for (i, n) in layers.iter_mut().enumerate() {
        while tv.contains_key(&format!("layer{}.{}.conv1.weight", i + 1, *n)) {
            *n += 1;
        }
    }
    if !tv.contains_key("layer1.0.conv3.weight") {
        return Err(bad(
            "a basic-block ResNet (18/34): our r18/r34 give layer1.0 a projection shortcut that torchvision's lacks, so they do not map; use a bottleneck ResNet (50/101/152/200)".into(),
        ));
    }
    let depth = match layers {
        [3, 4, 6, 3] => 50,
        [3, 4, 23, 3] => 101,
        [3, 8, 36, 3] => 152,
        [3, 24, 36, 3] => 200,
        _ => {
            return Err(bad(format!(
                "blocks per stage {layers:?} are not those of a ResNet-50/101/152/200"
            )))
        }
    };
    let width = conv1.shape[0] as f64 / 64.0;
    Ok(format!("r{depth}_{width}x_sk0"))
}

/// Settings of an import that the state dict does not carry.
pub struct ImportOptions {
    /// Architecture name; inferred from the file when `None` (and checked against it when set).
    pub model: Option<String>,
    /// The image size the model is meant for (above 32: the ImageNet stem).
    pub image_size: usize,
    pub proj_layers: usize,
    pub proj_dim: usize,
    pub seed: u64,
}

/// Reads a torchvision ResNet state dict (safetensors) and writes a pretraining checkpoint.
pub fn import_torchvision(from: &Path, to: &Path, opt: &ImportOptions) -> Result<ModelMeta> {
    let tv = st_io::read(from)?;
    let inferred = infer_model(&tv, from)?;
    let model = opt.model.clone().unwrap_or_else(|| inferred.clone());
    if ResNetConfig::parse(&model)? != ResNetConfig::parse(&inferred)? {
        return Err(Error::Checkpoint {
            path: from.to_path_buf(),
            msg: format!("holds a {inferred} network, but --model is {model}"),
        });
    }
    let in_channels = tv["conv1.weight"].shape.get(1).copied().unwrap_or(3);
    let meta = ModelMeta {
        stage: pretrain::STAGE.into(),
        model,
        image_size: opt.image_size,
        in_channels,
        proj_layers: opt.proj_layers,
        proj_dim: opt.proj_dim,
        proj_layer: 0,
        num_classes: tv.get("fc.bias").map(|b| b.shape[0]).unwrap_or(0),
        stem_pool_padding: crate::nn::StemPoolPadding::Symmetric,
    };
    torchvision::check_mappable(&meta.config()?)
        .map_err(|e| Error::Config(format!("--image-size {}: {e}", opt.image_size)))?;
    let mut store = ParamStore::new(crate::DType::F32, opt.seed);
    SimClrNet::new(&mut store, meta.clone())?;
    torchvision::import(&mut store, &tv, from)?;
    model::save(&store, &meta, to)?;
    Ok(meta)
}
