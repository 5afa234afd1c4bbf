//! `simclr embed`: features of every image of a dataset split, for downstream use (see
//! `crate::interop::embed` for what the file holds). Only the flags that choose the data, the
//! layer and the device: nothing here trains.

use crate::data::{open_dataset, DatasetSpec};
use crate::interop::embed::{self, FeatureNet};
use crate::nn::ActivationPolicy;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct EmbedArgs {
    /// Checkpoint of any stage (pretrain, finetune, distill, linear-eval, supervised, or one
    /// made by `simclr import`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Which features: 0 = the encoder's representation (after global pooling); k = the output
    /// of projection-head layer k (hidden layers after BN + ReLU, the last after BN).
    #[arg(long, default_value_t = 0)]
    pub layer: usize,
    /// Split to embed: train or test.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Output safetensors file: `features` [N, D] f32 and `labels` [N] i64, in dataset order.
    #[arg(long)]
    pub output: PathBuf,
    /// synthetic (built in), mnist, fashion-mnist, cifar10, cifar100 or folder.
    #[arg(long, default_value = "synthetic")]
    pub dataset: String,
    /// Directory holding the dataset's files (downloaded copies or the image folder).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Side the images are resized to (default: the checkpoint's training size).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Synthetic dataset: its seed and split sizes (as given to the training run).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Synthetic dataset: number of training images (as in training).
    #[arg(long)]
    pub synthetic_train: Option<usize>,
    /// Synthetic dataset: number of test images (as in training).
    #[arg(long)]
    pub synthetic_test: Option<usize>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Loader worker threads (0: build batches on the calling thread).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
}

pub fn run(a: &EmbedArgs) -> Result<()> {
    let (meta, net, mut store) = FeatureNet::load(&a.checkpoint, a.layer)?;
    let size = a.image_size.unwrap_or(meta.image_size);
    let defaults = crate::train::Config::default();
    let spec = DatasetSpec {
        name: a.dataset.clone(),
        data_dir: a.data_dir.clone(),
        seed: a.seed,
        synthetic_train: a.synthetic_train.unwrap_or(defaults.synthetic_train),
        synthetic_test: a.synthetic_test.unwrap_or(defaults.synthetic_test),
        image_size: crate::data::native_size::stored_side(
            &a.dataset,
            a.data_dir.as_deref(),
            Some(size),
        )?,
        preload: false,
        bad_images: crate::data::stream::BadImages::Fail,
    };
    let splits = open_dataset(&spec)?;
    let ds = match a.split.as_str() {
        "train" => splits.train,
        "test" => splits.test,
        other => {
            return Err(Error::Config(format!(
                "--split {other}: expected train or test"
            )))
        }
    };
    if ds.channels() != meta.in_channels {
        return Err(Error::Config(format!(
            "--checkpoint {} takes {}-channel images; dataset '{}' has {}-channel images",
            a.checkpoint.display(),
            meta.in_channels,
            a.dataset,
            ds.channels()
        )));
    }
    let device = a
        .device
        .parse::<crate::DeviceRequest>()
        .map_err(Error::Config)?
        .resolve()?;
    store.to(device, crate::DType::F32)?;
    let policy = ActivationPolicy::default();
    let (feats, labels) = embed::embed_dataset(
        &net,
        &mut store,
        ds.clone(),
        size,
        device,
        policy,
        a.workers,
    )?;
    let info = HashMap::from([
        ("model".to_string(), meta.model.clone()),
        ("layer".to_string(), a.layer.to_string()),
        ("split".to_string(), a.split.clone()),
        ("dataset".to_string(), a.dataset.clone()),
        ("image_size".to_string(), size.to_string()),
        ("checkpoint".to_string(), a.checkpoint.display().to_string()),
        (
            "class_names".to_string(),
            serde_json::to_string(ds.class_names()).expect("strings serialise"),
        ),
    ]);
    let (n, dim) = (labels.len(), net.dim());
    embed::write(&a.output, feats, labels, dim, info)?;
    println!(
        "{}: {n} x {dim} features ({} split, layer {}) of {}",
        a.output.display(),
        a.split,
        a.layer,
        meta.model
    );
    Ok(())
}
