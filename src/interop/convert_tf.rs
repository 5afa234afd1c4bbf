//! `simclr import --from simclr-tf`: a checkpoint of the official SimCLRv2 release (online or
//! EMA weights, with its projection head when it has one) into a pretraining checkpoint. The
//! architecture comes from `--model` or from the release's directory name (`r50_1x_sk0/…`).

use super::simclr_tf;
use super::tf_checkpoint::Bundle;
use crate::nn::ResNetConfig;
use crate::params::ParamStore;
use crate::train::model::{self, ModelMeta, SimClrNet};
use crate::train::pretrain;
use crate::{Error, Result};
use std::path::Path;

pub struct TfImportOptions {
    pub model: Option<String>,
    pub image_size: usize,
    /// Read the exponential moving average of the weights (`ema_model/`).
    pub ema: bool,
    /// Head to initialise when the checkpoint has none: layers and width.
    pub proj_layers: usize,
    pub proj_dim: usize,
    pub seed: u64,
}

/// What an import found.
pub struct TfImported {
    pub meta: ModelMeta,
    /// Whether the projection head came from the checkpoint (else freshly initialised).
    pub head_from_checkpoint: bool,
}

/// The first path component that is an architecture name (the release's directories are).
fn model_from_path(prefix: &Path) -> Option<String> {
    prefix
        .components()
        .rev()
        .filter_map(|c| c.as_os_str().to_str())
        .find(|c| ResNetConfig::parse(c).is_ok())
        .map(str::to_string)
}

pub fn import_simclr_tf(prefix: &Path, to: &Path, opt: &TfImportOptions) -> Result<TfImported> {
    let bad = |msg: String| Error::Checkpoint {
        path: prefix.to_path_buf(),
        msg,
    };
    let model = opt
        .model
        .clone()
        .or_else(|| model_from_path(prefix))
        .ok_or_else(|| {
            Error::Config(format!(
                "--model is needed: no architecture name (like r50_1x_sk0) in the path {}",
                prefix.display()
            ))
        })?;
    let bundle = Bundle::open(prefix)?;
    let (convs, heads) = simclr_tf::count(&bundle, opt.ema);
    if convs == 0 {
        let scope = if opt.ema {
            "ema_model/base_model/"
        } else {
            "base_model/"
        };
        return Err(bad(format!(
            "no convolution kernels under '{scope}': not a SimCLR TF1 checkpoint{}",
            if opt.ema {
                " with EMA weights (drop --ema?)"
            } else {
                ""
            }
        )));
    }
    let (proj_layers, proj_dim) = if heads > 0 {
        let scope = if opt.ema { "ema_model/" } else { "" };
        let last = format!("{scope}head_contrastive/nl_{}/dense/kernel", heads - 1);
        let shape = bundle
            .entries()
            .get(&last)
            .map(|e| e.shape.clone())
            .ok_or_else(|| {
                bad(format!(
                    "head layers are not numbered 0..{heads}: no '{last}'"
                ))
            })?;
        (heads, shape.get(1).copied().unwrap_or(0))
    } else {
        (opt.proj_layers, opt.proj_dim)
    };
    let meta = ModelMeta {
        stage: pretrain::STAGE.into(),
        model: model.clone(),
        image_size: opt.image_size,
        in_channels: 3,
        proj_layers,
        proj_dim,
        proj_layer: 0,
        num_classes: 0,
    };
    let mut store = ParamStore::new(crate::DType::F32, opt.seed);
    let net = SimClrNet::new(&mut store, meta.clone())?;
    let mut plan = simclr_tf::encoder_plan(&net.encoder, opt.ema);
    let ours = plan
        .iter()
        .filter(|p| p.2 == simclr_tf::Layout::ConvKernel)
        .count();
    if ours != convs {
        return Err(bad(format!(
            "holds {convs} convolutions, but a {model} has {ours}: wrong --model (depth or sk)?"
        )));
    }
    if heads > 0 {
        plan.extend(simclr_tf::head_plan(&net.head, opt.ema));
    }
    simclr_tf::load(&mut store, &bundle, &plan, prefix)?;
    model::save(&store, &meta, to)?;
    Ok(TfImported {
        meta,
        head_from_checkpoint: heads > 0,
    })
}
