//! Run configuration: defaults sized for the built-in dataset on a CPU, overridable by a TOML
//! file (`--config`), which command-line flags override in turn.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Encoder architecture, `r{depth}_{w}x_sk{0|1}`.
    pub model: String,
    /// Distillation student; by default the teacher's architecture (self-distillation).
    pub student_model: Option<String>,
    pub dataset: String,
    pub data_dir: Option<PathBuf>,
    /// Training resolution; by default the dataset's own image side.
    pub image_size: Option<usize>,
    pub synthetic_train: usize,
    pub synthetic_test: usize,
    /// cpu, cuda, cuda:N or auto.
    pub device: String,
    pub seed: u64,
    pub out: PathBuf,
    /// Loader worker threads (0: one per core).
    pub workers: usize,
    /// Image folders and lists: `fail` (stop at an unreadable file, naming it) or `skip`
    /// (warn once naming it and use the next readable image).
    pub bad_images: String,
    /// Write a metrics line every this many steps. Pretraining's `loss` and `contrastive_acc`
    /// there are means over the steps since the previous line (on a GPU summed on the device
    /// and read once per line, which is also when a non-finite loss is caught).
    pub log_every: usize,
    /// Off a terminal, print a progress line at most every this many seconds (0: every step).
    pub progress_every: f64,
    /// Recompute BN + ReLU outputs in backward instead of keeping them (less activation
    /// memory, one more BN-apply pass; the same gradients bit for bit).
    pub recompute: bool,
    /// Activation dtype: `f32`, `bf16` (fp32 master weights; CUDA only), or `auto` (bf16 on a
    /// GPU, f32 on the CPU).
    pub precision: String,
    /// cuDNN convolution algorithms: `deterministic` (the same bits on every run) or
    /// `fastest` (nondeterministic ones too, as PyTorch's default; CUDA only).
    pub conv_algorithms: String,
    /// Plan pretraining's memory against this many GiB (default: on a GPU, its free memory; on
    /// the CPU, no check) and stop before the first step if the batch will not fit.
    pub memory_limit: Option<f64>,
    /// Multi-process jobs: how long a collective (or the start-up rendezvous) may wait for the
    /// other ranks before the job ends with an error naming the rank and the collective.
    pub dist_timeout_s: f64,
    /// Data parallelism: MiB of gradients per all-reduce bucket (reduced during backward).
    pub bucket_mb: f64,
    pub pretrain: PretrainConfig,
    pub finetune: FinetuneConfig,
    pub distill: DistillConfig,
    pub linear_eval: LinearEvalConfig,
}

/// Learning-rate defaults are above the paper's (0.075·sqrt(B) pretraining, 0.005·sqrt(B)
/// fine-tuning) because the built-in runs take hundreds of steps, not tens of thousands: with
/// LARS (η = 0.001) a step moves each tensor by about lr·η of its norm. Measured on
/// Fashion-MNIST with 1% labels, the supervised baseline reached 70.6% top-1 at base 0.05 and
/// 76.5% at base 0.5 (30 epochs, batch 64).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PretrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Base learning rate: lr = base·sqrt(B) (sqrt scaling) or base·B/256 (linear).
    pub lr: f64,
    pub lr_scaling: String,
    /// Fraction of the steps spent in linear warmup.
    pub warmup: f64,
    pub weight_decay: f64,
    pub temperature: f64,
    /// Layers of the projection head (2-4; `--head-depth`).
    pub head_depth: usize,
    pub proj_dim: usize,
    /// MoCo-style memory: projections of this many recent images from the EMA network serve
    /// as extra negatives (0: off).
    pub queue_size: usize,
    /// Gradient caching: compute the loss over the whole batch but run the network on at most
    /// this many images (two views each) at a time; None runs the whole batch on one tape.
    pub micro_batch: Option<usize>,
    /// Data-parallel ranks, one thread each (one GPU each with CUDA), each on a disjoint share
    /// of every batch, with synchronised BN and global negatives; 1 = one process as usual.
    pub world_size: usize,
    pub ema_momentum: f64,
    /// Colour distortion strength s; by default the paper's for the training size (1.0 above
    /// 64 px as on ImageNet, 0.5 at CIFAR sizes).
    pub color_strength: Option<f64>,
    /// Gaussian blur (p = 0.5, σ in [0.1, 2.0], kernel 10% of the side); by default on above
    /// 64 px, off at CIFAR sizes, as in the paper.
    pub blur: Option<bool>,
    /// Where the augmentation runs: cpu, gpu or auto (`--augment-on`; `train::input`).
    pub augment_on: String,
    /// Where JPEGs are decoded with `--augment-on gpu`: cpu, gpu (nvJPEG) or auto
    /// (`--decode-on`; `train::decode_on`).
    pub decode_on: String,
    /// kNN monitor (k = 200, τ = 0.07, labelled images as memory) every this many epochs
    /// (0: off); the last epoch is always checked.
    pub knn_every: usize,
    /// Test images the kNN monitor classifies (evenly spread; 0: the whole test split).
    pub knn_test_images: usize,
    /// Replay the single-device step (no micro-batches, queue or ranks) as a CUDA graph:
    /// `off`, `on`, or `auto` (when it can be captured); the LARS update stays outside the
    /// graph so the learning-rate schedule needs no device scalar.
    pub cuda_graph: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FinetuneConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub lr_scaling: String,
    pub warmup: f64,
    pub weight_decay: f64,
    /// Fine-tune from the output of this projection-head layer (0: the encoder output;
    /// `--ft-from-layer`).
    pub from_layer: usize,
    /// Fraction of the training labels used, class-balanced, in (0, 1].
    pub label_fraction: f64,
    /// Alternatively, this many labelled images per class.
    pub labels_per_class: Option<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistillConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub lr_scaling: String,
    pub warmup: f64,
    pub weight_decay: f64,
    /// τ of both softmaxes.
    pub temperature: f64,
    /// Weight of the distillation term; 1 − α weighs the labelled cross-entropy.
    pub alpha: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinearEvalConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub lr_scaling: String,
    pub warmup: f64,
    pub weight_decay: f64,
    /// Class-balanced fraction of the training labels the linear classifier sees, in (0, 1]
    /// (1: all, the standard protocol; 0.01 and 0.1 as in the paper's semi-supervised tables).
    pub label_fraction: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            model: "r50_0.25x_sk1".into(),
            student_model: None,
            dataset: "synthetic".into(),
            data_dir: None,
            image_size: None,
            synthetic_train: 4000,
            synthetic_test: 1000,
            device: "auto".into(),
            seed: 0,
            out: PathBuf::from("runs/latest"),
            workers: 0,
            bad_images: "fail".into(),
            log_every: 10,
            progress_every: 10.0,
            recompute: false,
            precision: "auto".into(),
            conv_algorithms: "deterministic".into(),
            memory_limit: None,
            dist_timeout_s: 300.0,
            bucket_mb: super::data_parallel::DEFAULT_BUCKET_MB,
            pretrain: PretrainConfig::default(),
            finetune: FinetuneConfig::default(),
            distill: DistillConfig::default(),
            linear_eval: LinearEvalConfig::default(),
        }
    }
}

impl Default for PretrainConfig {
    fn default() -> Self {
        PretrainConfig {
            epochs: 6,
            batch_size: 64,
            lr: 0.3,
            lr_scaling: "sqrt".into(),
            warmup: 0.05,
            weight_decay: 1e-6,
            temperature: 0.5,
            head_depth: 3,
            proj_dim: 64,
            queue_size: 0,
            micro_batch: None,
            world_size: 1,
            ema_momentum: 0.999,
            color_strength: None,
            blur: None,
            augment_on: "auto".into(),
            decode_on: "auto".into(),
            knn_every: 1,
            knn_test_images: 2000,
            cuda_graph: "off".into(),
        }
    }
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            epochs: 50,
            batch_size: 16,
            lr: 0.5,
            lr_scaling: "sqrt".into(),
            warmup: 0.0,
            weight_decay: 0.0,
            from_layer: 1,
            label_fraction: 0.025,
            labels_per_class: None,
        }
    }
}

impl Default for DistillConfig {
    fn default() -> Self {
        DistillConfig {
            epochs: 2,
            batch_size: 128,
            lr: 0.3,
            lr_scaling: "sqrt".into(),
            warmup: 0.05,
            weight_decay: 1e-6,
            temperature: 1.0,
            alpha: 1.0,
        }
    }
}

impl Default for LinearEvalConfig {
    fn default() -> Self {
        LinearEvalConfig {
            epochs: 20,
            batch_size: 128,
            lr: 0.1,
            lr_scaling: "sqrt".into(),
            warmup: 0.0,
            weight_decay: 0.0,
            label_fraction: 1.0,
        }
    }
}

impl Config {
    /// Reads a TOML file; unknown keys are errors (a typo must not be silently ignored), and
    /// renamed keys name their new name.
    pub fn from_file(path: &Path) -> Result<Self> {
        super::config_keys::load(Some(path), &[])
    }

    pub(super) fn deserialize_table(t: toml::Table) -> std::result::Result<Self, toml::de::Error> {
        t.try_into()
    }

    /// The configuration as TOML, loadable back with `--config`.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::Config(format!("configuration to TOML: {e}")))
    }

    /// Rejects impossible settings before any work starts.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        super::config_checks::check(self)?;
        crate::nn::ResNetConfig::parse(&self.model)?;
        self.bad_images.parse::<crate::data::stream::BadImages>()?;
        if !["auto", "f32", "bf16"].contains(&self.precision.as_str()) {
            return bad(format!(
                "--precision must be auto, f32 or bf16, got '{}'",
                self.precision
            ));
        }
        crate::ops::conv2d::ConvAlgorithms::parse(
            "conv_algorithms (--conv-algorithms)",
            &self.conv_algorithms,
        )?;
        if let Some(s) = &self.student_model {
            crate::nn::ResNetConfig::parse(s)?;
        }
        let f = &self.finetune;
        if !(f.label_fraction > 0.0 && f.label_fraction <= 1.0) {
            return bad(format!(
                "--label-fraction must be in (0, 1], got {}",
                f.label_fraction
            ));
        }
        let lf = self.linear_eval.label_fraction;
        if !(lf > 0.0 && lf <= 1.0) {
            return bad(format!(
                "--linear-eval-fraction must be in (0, 1], got {lf}"
            ));
        }
        if f.labels_per_class == Some(0) {
            return bad("--labels-per-class must be positive".into());
        }
        if f.from_layer > self.pretrain.head_depth {
            return bad(format!(
                "--ft-from-layer {} is deeper than the {}-layer projection head (--head-depth)",
                f.from_layer, self.pretrain.head_depth
            ));
        }
        if !(2..=4).contains(&self.pretrain.head_depth) {
            return bad(format!(
                "--head-depth: the projection head has 2 to 4 layers, not {}",
                self.pretrain.head_depth
            ));
        }
        if self.pretrain.temperature <= 0.0 || self.distill.temperature <= 0.0 {
            return bad("temperatures must be positive".into());
        }
        if !(0.0..=1.0).contains(&self.distill.alpha) {
            return bad(format!(
                "--alpha must be in [0, 1], got {}",
                self.distill.alpha
            ));
        }
        if !super::input::AUGMENT_ON_VALUES.contains(&self.pretrain.augment_on.as_str()) {
            return bad(format!(
                "--augment-on '{}' is not one of: {}",
                self.pretrain.augment_on,
                super::input::AUGMENT_ON_VALUES.join(", ")
            ));
        }
        if !super::decode_on::DECODE_ON_VALUES.contains(&self.pretrain.decode_on.as_str()) {
            return bad(format!(
                "--decode-on '{}' is not one of: {}",
                self.pretrain.decode_on,
                super::decode_on::DECODE_ON_VALUES.join(", ")
            ));
        }
        if matches!(self.pretrain.color_strength, Some(s) if !(0.0..=1.25).contains(&s)) {
            return bad("--color-strength must be in [0, 1.25]".into());
        }
        if !(0.0..1.0).contains(&self.pretrain.ema_momentum) {
            return bad(format!(
                "pretrain.ema_momentum must be in [0, 1), got {}",
                self.pretrain.ema_momentum
            ));
        }
        for (stage, b, e) in [
            ("pretrain", self.pretrain.batch_size, self.pretrain.epochs),
            ("finetune", self.finetune.batch_size, self.finetune.epochs),
            ("distill", self.distill.batch_size, self.distill.epochs),
            (
                "linear-eval",
                self.linear_eval.batch_size,
                self.linear_eval.epochs,
            ),
        ] {
            if b == 0 || e == 0 {
                return bad(format!("{stage}: batch size and epochs must be positive"));
            }
        }
        // Train-mode BN needs two rows for a variance.
        let w = self.pretrain.world_size;
        if w == 0 || w > self.pretrain.batch_size {
            return bad(format!(
                "pretrain.world_size must be between 1 and the batch size ({}), got {w}",
                self.pretrain.batch_size
            ));
        }
        if w > 1 && self.pretrain.micro_batch.is_some() {
            return bad(
                "pretrain.world_size > 1 and pretrain.micro_batch cannot be combined yet".into(),
            );
        }
        if self.pretrain.micro_batch == Some(0) {
            return bad("pretrain.micro_batch (--micro-batch) must be at least 1 image".into());
        }
        if self.pretrain.batch_size < 2 {
            return bad("pretraining needs a batch of at least 2 images (negatives)".into());
        }
        for s in [
            &self.pretrain.lr_scaling,
            &self.finetune.lr_scaling,
            &self.distill.lr_scaling,
            &self.linear_eval.lr_scaling,
        ] {
            if s != "sqrt" && s != "linear" {
                return bad(format!(
                    "learning-rate scaling must be sqrt or linear, not '{s}'"
                ));
            }
        }
        Ok(())
    }
}
