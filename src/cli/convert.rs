//! `simclr export` and `simclr import`: our checkpoints to and from other frameworks' files
//! (the conversions themselves live in `crate::interop`).

use crate::interop::convert::{self, ImportOptions};
use crate::interop::convert_tf::{self, TfImportOptions, TfRelease};
use crate::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Checkpoint to export (any stage; its encoder, and a classifier reading the encoder
    /// output as `fc`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Target format: torchvision (a ResNet state dict in safetensors; sk0 bottleneck models
    /// trained above 32 px only).
    #[arg(long)]
    pub to: String,
    /// Output file.
    #[arg(long)]
    pub output: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// File to import: a torchvision ResNet state dict in safetensors, or the prefix of an
    /// official SimCLRv2 checkpoint (TF1: r50_1x_sk0/model.ckpt-250228; TF2: r50_1x_sk0/
    /// saved_model/variables/variables or a ckpt-N prefix).
    #[arg(long)]
    pub file: PathBuf,
    /// Source format: torchvision, simclr-tf (the official SimCLRv2 release, TF1 or TF2: told
    /// apart by the keys) or simclr-tf2 (the TF2 release only).
    #[arg(long)]
    pub from: String,
    /// simclr-tf: take the exponential moving average of the weights (ema_model/).
    #[arg(long)]
    pub ema: bool,
    /// Output checkpoint: a pretraining checkpoint (when its projection head is fresh, fine-tune
    /// it with --proj-layer 0).
    #[arg(long)]
    pub output: PathBuf,
    /// Architecture, checked against the file (default: inferred from it, or for simclr-tf
    /// from the release's directory name).
    #[arg(long)]
    pub model: Option<String>,
    /// Image side the model is meant for. torchvision: above 32 (the ImageNet stem); simclr-tf:
    /// 32 or less selects the official CIFAR stem (3x3/1 conv, no max pool).
    #[arg(long, default_value_t = 224)]
    pub image_size: usize,
    /// Projection head to initialise when the file has none: layers and output width.
    #[arg(long, default_value_t = 3)]
    pub proj_layers: usize,
    /// Output width of that fresh head.
    #[arg(long, default_value_t = 128)]
    pub proj_dim: usize,
    /// simclr-tf: also import the supervised head as a classifier reading projection-head
    /// layer K (0: the encoder, as the pretrained release's linear head; a fine-tuned release
    /// model: the layer it was fine-tuned from), writing a checkpoint `simclr eval` reads.
    #[arg(long)]
    pub classifier_layer: Option<usize>,
    /// Seed of the fresh projection head.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn unknown(flag: &str, v: &str, allowed: &str) -> Error {
    Error::Config(format!("{flag} {v}: unknown format (allowed: {allowed})"))
}

pub fn export(a: &ExportArgs) -> Result<()> {
    match a.to.as_str() {
        "torchvision" => {
            let e = convert::export_torchvision(&a.checkpoint, &a.output)?;
            println!(
                "{}: {} as a torchvision ResNet state dict, {} tensors{} (safetensors; load with \
                 model.load_state_dict(safetensors.torch.load_file(path), strict=False))",
                a.output.display(),
                e.model,
                e.tensors,
                if e.with_fc {
                    ", fc included"
                } else {
                    ", no fc"
                }
            );
            Ok(())
        }
        other => Err(unknown("--to", other, "torchvision")),
    }
}

pub fn import(a: &ImportArgs) -> Result<()> {
    match a.from.as_str() {
        "torchvision" => {
            if a.ema || a.classifier_layer.is_some() {
                return Err(Error::Config(
                    "--ema and --classifier-layer apply to --from simclr-tf only".into(),
                ));
            }
            let opt = ImportOptions {
                model: a.model.clone(),
                image_size: a.image_size,
                proj_layers: a.proj_layers,
                proj_dim: a.proj_dim,
                seed: a.seed,
            };
            let meta = convert::import_torchvision(&a.file, &a.output, &opt)?;
            println!(
                "{}: {} encoder from {} with a fresh {}-layer projection head (fine-tune with --proj-layer 0)",
                a.output.display(),
                meta.model,
                a.file.display(),
                meta.proj_layers
            );
            Ok(())
        }
        "simclr-tf" | "simclr-tf2" => {
            let opt = TfImportOptions {
                release: (a.from == "simclr-tf2").then_some(TfRelease::Tf2),
                model: a.model.clone(),
                image_size: a.image_size,
                ema: a.ema,
                proj_layers: a.proj_layers,
                proj_dim: a.proj_dim,
                seed: a.seed,
                classifier_layer: a.classifier_layer,
            };
            let r = convert_tf::import_simclr_tf(&a.file, &a.output, &opt)?;
            println!(
                "{}: {} ({} weights) from {}, projection head {}",
                a.output.display(),
                r.meta.model,
                if a.ema { "EMA" } else { "online" },
                a.file.display(),
                if r.head_from_checkpoint {
                    format!(
                        "of {} layers to {} from the checkpoint",
                        r.meta.proj_layers, r.meta.proj_dim
                    )
                } else {
                    "freshly initialised (none in the checkpoint; fine-tune with --proj-layer 0)"
                        .into()
                }
            );
            Ok(())
        }
        other => Err(unknown(
            "--from",
            other,
            "torchvision, simclr-tf, simclr-tf2",
        )),
    }
}
