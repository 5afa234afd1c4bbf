//! `simclr import --from simclr-tf|simclr-tf2`: a checkpoint of the official SimCLRv2 release
//! (TF1 name-based, online or EMA weights; or TF2 object-based, see [`simclr_tf2`]; with its
//! projection head when it has one) into a pretraining checkpoint. The architecture comes from
//! `--model` or from the release's directory name (`r50_1x_sk0/…`).

use super::simclr_tf;
use super::simclr_tf2;
use super::tf_checkpoint::Bundle;
use crate::nn::ResNetConfig;
use crate::params::ParamStore;
use crate::train::model::{self, Classifier, ModelMeta, SimClrNet};
use crate::train::pretrain;
use crate::{Error, Result};
use std::path::Path;

/// Which release's naming a checkpoint uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TfRelease {
    /// TF1 `tf.layers` names (`base_model/conv2d_3/kernel`).
    Tf1,
    /// TF2 object-graph keys (`model/resnet_model/…/.ATTRIBUTES/VARIABLE_VALUE`).
    Tf2,
}

pub struct TfImportOptions {
    /// None: told apart by the keys.
    pub release: Option<TfRelease>,
    pub model: Option<String>,
    pub image_size: usize,
    /// Read the exponential moving average of the weights (`ema_model/`).
    pub ema: bool,
    /// Head to initialise when the checkpoint has none: layers and width.
    pub proj_layers: usize,
    pub proj_dim: usize,
    pub seed: u64,
    /// Also import the supervised head (`head_supervised/linear_layer/dense`) as a classifier
    /// reading projection-head layer k (0: the encoder, as the pretrained release's linear
    /// head; the fine-tuned release models read the layer they were fine-tuned from), and
    /// write a fine-tuned checkpoint that `simclr eval` reads.
    pub classifier_layer: Option<usize>,
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
    let tf2 = simclr_tf2::is_object_based(&bundle);
    let release = opt
        .release
        .unwrap_or(if tf2 { TfRelease::Tf2 } else { TfRelease::Tf1 });
    if release == TfRelease::Tf2 && opt.ema {
        return Err(Error::Config(
            "--ema: the TF2 release (object-based checkpoints) has no EMA weights".into(),
        ));
    }
    let (convs, heads) = match release {
        TfRelease::Tf1 => simclr_tf::count(&bundle, opt.ema),
        TfRelease::Tf2 => simclr_tf2::count(&bundle),
    };
    if convs == 0 {
        let (scope, what) = match (release, opt.ema) {
            (TfRelease::Tf2, _) => ("model/resnet_model/", "TF2 (object-based)"),
            (TfRelease::Tf1, true) => ("ema_model/base_model/", "TF1"),
            (TfRelease::Tf1, false) => ("base_model/", "TF1"),
        };
        let hint = match (release, tf2, opt.ema) {
            (TfRelease::Tf1, true, _) => " (its keys are object-based: --from simclr-tf2)",
            (TfRelease::Tf2, false, _) => " (its keys are name-based: --from simclr-tf)",
            (_, _, true) => " with EMA weights (drop --ema?)",
            _ => "",
        };
        return Err(bad(format!(
            "no convolution kernels under '{scope}': not a SimCLR {what} checkpoint{hint}"
        )));
    }
    let scope = if opt.ema { "ema_model/" } else { "" };
    let (proj_layers, proj_dim) = if heads > 0 {
        let last = match release {
            TfRelease::Tf1 => format!("{scope}head_contrastive/nl_{}/dense/kernel", heads - 1),
            TfRelease::Tf2 => simclr_tf2::head_kernel(heads - 1),
        };
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
    // The supervised head's kernel and bias. TF1: it may have no EMA copy; then the online
    // one is taken.
    let sup = |leaf: &str| match release {
        TfRelease::Tf2 => simclr_tf2::key(&format!("{}/{leaf}", simclr_tf2::SUPERVISED)),
        TfRelease::Tf1 => {
            let ema = format!("{scope}head_supervised/linear_layer/dense/{leaf}");
            if bundle.entries().contains_key(&ema) {
                ema
            } else {
                format!("head_supervised/linear_layer/dense/{leaf}")
            }
        }
    };
    let num_classes = match opt.classifier_layer {
        None => 0,
        Some(k) => {
            if k > heads {
                return Err(bad(format!(
                    "--classifier-layer {k}: the checkpoint's projection head has {heads} layers"
                )));
            }
            let e = bundle.entries().get(&sup("kernel"));
            e.and_then(|e| e.shape.get(1).copied()).ok_or_else(|| {
                bad(format!(
                    "--classifier-layer: no supervised head '{}'",
                    sup("kernel")
                ))
            })?
        }
    };
    let meta = ModelMeta {
        stage: if opt.classifier_layer.is_some() {
            "finetune"
        } else {
            pretrain::STAGE
        }
        .into(),
        model: model.clone(),
        image_size: opt.image_size,
        in_channels: 3,
        proj_layers,
        proj_dim,
        proj_layer: opt.classifier_layer.unwrap_or(0),
        num_classes,
        stem_pool_padding: crate::nn::StemPoolPadding::SameTf,
    };
    let mut store = ParamStore::new(crate::DType::F32, opt.seed);
    let (encoder, head) = if opt.classifier_layer.is_some() {
        let c = Classifier::new(&mut store, meta.clone())?;
        (c.encoder, c.head)
    } else {
        let n = SimClrNet::new(&mut store, meta.clone())?;
        (n.encoder, n.head)
    };
    let mut plan = match release {
        TfRelease::Tf1 => simclr_tf::encoder_plan(&encoder, opt.ema),
        TfRelease::Tf2 => simclr_tf2::encoder_plan(&encoder),
    };
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
        plan.extend(match release {
            TfRelease::Tf1 => simclr_tf::head_plan(&head, opt.ema),
            TfRelease::Tf2 => simclr_tf2::head_plan(&head),
        });
    }
    if opt.classifier_layer.is_some() {
        use simclr_tf::Layout;
        plan.push((
            "classifier.weight".into(),
            sup("kernel"),
            Layout::DenseKernel,
        ));
        plan.push(("classifier.bias".into(), sup("bias"), Layout::Same));
    }
    simclr_tf::load(&mut store, &bundle, &plan, prefix)?;
    model::save(&store, &meta, to)?;
    Ok(TfImported {
        meta,
        head_from_checkpoint: heads > 0,
    })
}
