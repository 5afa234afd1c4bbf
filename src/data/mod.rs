//! The data layer: datasets, SimCLR augmentations and a parallel batch loader.
//!
//! ```text
//! let splits = open_dataset(&DatasetSpec { name: "cifar10".into(), data_dir: Some(dir), ..Default::default() })?;
//! let aug = Arc::new(PretrainAugment::new(AugmentConfig::cifar(32))?);
//! let loader = Loader::new(splits.train.clone(), aug, LoaderConfig { batch_size: 512, views: 2, seed, ..Default::default() })?;
//! for batch in loader.epoch(e) { let b = batch?; /* b.views[0], b.views[1]: [B,H,W,C] f32 */ }
//! ```
//!
//! - Datasets ([`Dataset`]) hand out u8 HWC images ([`Image`]) with labels and class names.
//!   `synthetic` (built in), `mnist` and `fashion-mnist` (IDX, gzipped or not; 1 channel), `cifar10`,
//!   `cifar100` (binary versions; fine labels), `folder` (ImageNet's layout, JPEG/PNG) and
//!   `list` (`<path> <label>` files), streamed by [`stream`]: decoded in the loader's workers at
//!   the scale their crops need; a folder can instead be preloaded in parallel (`preload`).
//! - Transforms ([`Transform`]): [`PretrainAugment`], [`FinetuneAugment`], [`EvalTransform`],
//!   configured by [`AugmentConfig`] (`imagenet(size)` / `cifar(size)` defaults). They keep the
//!   dataset's channel count: on 1-channel images saturation and hue are skipped and grayscale
//!   is a no-op.
//! - [`Loader`]: shuffled (per seed and epoch) batches of 1 or 2 views as f32 NHWC tensors, built
//!   by worker threads with bounded prefetch; every view of every image draws from an RNG
//!   derived from (seed, epoch, index, view), so output never depends on thread timing.

pub mod augment;
pub mod cifar;
pub mod dataset;
pub mod folder;
#[cfg(feature = "cuda")]
pub mod gpu_decode;
#[cfg(feature = "cuda")]
pub mod gpu_input;
pub mod idx;
pub mod loader;
pub mod mnist;
pub mod native_size;
pub mod raw_views;
pub mod stream;
pub mod synthetic;

#[cfg(test)]
mod tests;

pub use augment::{
    sample_rng, AugmentConfig, EvalTransform, FinetuneAugment, Interpolation, Normalize,
    PretrainAugment, Transform,
};
pub use dataset::{
    class_balanced_subset, ArrayDataset, Dataset, DecodeNeed, Image, Routed, Sample,
};
pub use folder::FolderDataset;
pub use loader::{Batch, Batches, Loader, LoaderConfig, Ordered};
pub use raw_views::{RawBatch, RawBatches, RawView, SourceDecode};

use crate::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;

pub const DATASET_NAMES: [&str; 7] = [
    "synthetic",
    "mnist",
    "fashion-mnist",
    "cifar10",
    "cifar100",
    "folder",
    "list",
];

/// Which dataset to open and how.
#[derive(Clone, Debug)]
pub struct DatasetSpec {
    /// One of [`DATASET_NAMES`].
    pub name: String,
    /// Where the files are (fashion-mnist falls back to Debian's install location).
    pub data_dir: Option<PathBuf>,
    /// Synthetic only: the generator seed and the split sizes.
    pub seed: u64,
    pub synthetic_train: usize,
    pub synthetic_test: usize,
    /// Synthetic: the image side. Folder with `preload`: the side images are stored at.
    pub image_size: usize,
    /// Folder only: decode everything at open (in parallel, centre squares of `image_size`)
    /// instead of streaming it (`stream`: decoded on every access, full pictures).
    pub preload: bool,
    /// Folder and list: what an unreadable image does when streaming.
    pub bad_images: stream::BadImages,
}

impl Default for DatasetSpec {
    fn default() -> Self {
        DatasetSpec {
            name: "synthetic".into(),
            data_dir: None,
            seed: 0,
            synthetic_train: 10_000,
            synthetic_test: 2_000,
            image_size: 32,
            preload: false,
            bad_images: stream::BadImages::Fail,
        }
    }
}

pub struct Splits {
    pub train: Arc<dyn Dataset>,
    pub test: Arc<dyn Dataset>,
}

fn splits<A: Dataset + 'static, B: Dataset + 'static>((a, b): (A, B)) -> Splits {
    Splits {
        train: Arc::new(a),
        test: Arc::new(b),
    }
}

pub fn open_dataset(spec: &DatasetSpec) -> Result<Splits> {
    let dir = |what: &str| {
        spec.data_dir
            .clone()
            .ok_or_else(|| Error::Config(format!("dataset '{what}' needs a data directory")))
    };
    match spec.name.as_str() {
        "synthetic" => Ok(splits(synthetic::synthetic_splits(
            spec.synthetic_train,
            spec.synthetic_test,
            spec.image_size,
            spec.seed,
        )?)),
        "mnist" => Ok(splits(mnist::load_mnist(spec.data_dir.as_deref())?)),
        "fashion-mnist" => Ok(splits(idx::load_fashion_mnist(spec.data_dir.as_deref())?)),
        "cifar10" => Ok(splits(cifar::load_cifar10(&dir("cifar10")?)?)),
        "cifar100" => Ok(splits(cifar::load_cifar100(&dir("cifar100")?)?)),
        "folder" if spec.preload => {
            let (train, test) = folder::open_folder_splits(&dir("folder")?)?;
            Ok(splits((
                train.preload(spec.image_size)?,
                test.preload(spec.image_size)?,
            )))
        }
        "folder" => Ok(splits(stream::open_folder(
            &dir("folder")?,
            spec.bad_images,
        )?)),
        "list" => Ok(splits(stream::open_list(&dir("list")?, spec.bad_images)?)),
        other => Err(Error::Config(format!(
            "unknown dataset '{other}' (valid: {})",
            DATASET_NAMES.join(", ")
        ))),
    }
}
