//! Flag groups of the training stages. A subcommand flattens the groups of the stages it runs,
//! so `finetune --help` shows no distillation flags and `eval --help` no training flags.

use super::train_args::set;
use crate::train::Config;

/// `--lr`'s help: says that it is a base rate and what peak the defaults become.
fn lr_help() -> String {
    let c = Config::default();
    let peak = |base: f64, b: usize| base * (b as f64).sqrt();
    format!(
        "Base learning rate, scaled by the batch size B: the peak rate (reached after warmup, \
         then cosine decay) is base*sqrt(B) with --lr-scaling sqrt (the default) or base*B/256 \
         with linear; the resolved configuration printed at the start shows each stage's peak. \
         Defaults: pretrain {} at B {} (peak {:.2}), finetune {} at B {} (peak {:.2}), distill \
         {} at B {} (peak {:.2}), linear-eval {} at B {} (peak {:.2})",
        c.pretrain.lr,
        c.pretrain.batch_size,
        peak(c.pretrain.lr, c.pretrain.batch_size),
        c.finetune.lr,
        c.finetune.batch_size,
        peak(c.finetune.lr, c.finetune.batch_size),
        c.distill.lr,
        c.distill.batch_size,
        peak(c.distill.lr, c.distill.batch_size),
        c.linear_eval.lr,
        c.linear_eval.batch_size,
        peak(c.linear_eval.lr, c.linear_eval.batch_size),
    )
}

/// Optimisation of the stage(s) a command runs (every stage for `pipeline`; per stage there
/// with `--set STAGE.KEY=VALUE` or `--STAGE.KEY VALUE`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OptimArgs {
    /// Passes over the training images.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per step (pretraining runs two views of each).
    #[arg(long, value_name = "B")]
    pub batch_size: Option<usize>,
    #[arg(long, help = lr_help(), value_name = "BASE")]
    pub lr: Option<f64>,
    /// How --lr scales with the batch: sqrt (base*sqrt(B)) or linear (base*B/256).
    #[arg(long, value_name = "sqrt|linear")]
    pub lr_scaling: Option<String>,
    /// Fraction of the steps spent in linear learning-rate warmup, in [0, 1).
    #[arg(long, value_name = "FRACTION")]
    pub warmup: Option<f64>,
    /// LARS weight decay (not applied to biases and batch-norm parameters).
    #[arg(long)]
    pub weight_decay: Option<f64>,
}

/// Contrastive pretraining.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PretrainArgs {
    /// Replay the single-device step as a CUDA graph (off by default; auto falls back to eager
    /// steps with a message when the step cannot be captured).
    #[arg(long, value_enum)]
    pub cuda_graph: Option<crate::train::graph_step::GraphMode>,
    /// NT-Xent temperature.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Layers of the projection head, 2 to 4 (SimCLRv2: 3).
    #[arg(long, value_name = "N")]
    pub head_depth: Option<usize>,
    /// Width of the projection head's output.
    #[arg(long, value_name = "N")]
    pub proj_dim: Option<usize>,
    /// Memory-queue size: momentum-encoder projections of recent images as extra negatives
    /// (0: no momentum encoder).
    #[arg(long, value_name = "N")]
    pub queue_size: Option<usize>,
    /// Momentum of the EMA encoder that fills the queue, in [0, 1).
    #[arg(long)]
    pub ema_momentum: Option<f64>,
    /// Colour distortion strength in [0, 1.25] (default: 1.0 above 64 px, 0.5 at CIFAR sizes).
    #[arg(long)]
    pub color_strength: Option<f64>,
    /// Gaussian blur, true or false (default: on above 64 px, off at CIFAR sizes).
    #[arg(long)]
    pub blur: Option<bool>,
    /// Where the augmentation runs: cpu (loader workers; bicubic resampling), gpu (workers
    /// decode and draw the random parameters, the GPU crops with bilinear resampling, jitters,
    /// blurs and normalises) or auto (gpu on a CUDA device with RGB data) [default: auto].
    #[arg(long, value_name = "cpu|gpu|auto")]
    pub augment_on: Option<String>,
    /// Where JPEGs are decoded when the GPU augments: cpu (loader workers), gpu (nvJPEG, loaded
    /// at run time; the workers only read files and draw parameters; PNGs, progressive, CMYK
    /// and EXIF-rotated JPEGs still decode on the workers) or auto (gpu when nvJPEG loads, else
    /// cpu with a message) [default: auto].
    #[arg(long, value_name = "cpu|gpu|auto")]
    pub decode_on: Option<String>,
    /// Run the network on at most this many images (two views each) at a time; the loss still
    /// sees the whole batch (gradient caching).
    #[arg(long, value_name = "IMAGES")]
    pub micro_batch: Option<usize>,
    /// Data-parallel ranks, one thread each (one GPU each with CUDA), each on a disjoint share
    /// of every batch, with synchronised batch norm and global negatives.
    #[arg(long, value_name = "N")]
    pub world_size: Option<usize>,
    /// Check pretraining's memory against this many GiB before the first step (on a GPU the
    /// check always runs, against its free memory by default).
    #[arg(long, value_name = "GIB")]
    pub memory_limit: Option<f64>,
    /// kNN monitor every this many epochs (0: off; the last epoch is always checked).
    #[arg(long, value_name = "EPOCHS")]
    pub knn_every: Option<usize>,
}

/// Fine-tuning and the supervised baseline: the labelled subset and where the head is cut.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FinetuneArgs {
    /// Fine-tune from the output of this projection-head layer (0: the encoder output;
    /// SimCLRv2: 1).
    #[arg(long, value_name = "LAYER")]
    pub ft_from_layer: Option<usize>,
    /// Class-balanced fraction of the training labels, in (0, 1].
    #[arg(long)]
    pub label_fraction: Option<f64>,
    /// Labelled images per class (instead of --label-fraction).
    #[arg(long, value_name = "N")]
    pub labels_per_class: Option<usize>,
}

/// Distillation.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DistillArgs {
    /// Student architecture (default: the teacher's).
    #[arg(long)]
    pub student_model: Option<String>,
    /// Weight of the distillation term; 1 - alpha weighs the labelled cross-entropy (1: the
    /// unlabelled images only).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Softmax temperature of teacher and student.
    #[arg(long)]
    pub distill_temperature: Option<f64>,
}

/// Linear evaluation.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LinearEvalArgs {
    /// Class-balanced fraction of the labels the linear classifier trains on (default 1: all;
    /// 0.01 / 0.1 as in the paper's tables).
    #[arg(long)]
    pub linear_eval_fraction: Option<f64>,
}

impl PretrainArgs {
    pub fn apply(&self, c: &mut Config) {
        let p = &mut c.pretrain;
        set!(p.temperature, self.temperature);
        if let Some(m) = self.cuda_graph {
            p.cuda_graph = m.name().to_string();
        }
        set!(p.head_depth, self.head_depth);
        set!(p.proj_dim, self.proj_dim);
        set!(p.queue_size, self.queue_size);
        set!(p.ema_momentum, self.ema_momentum);
        set!(p.world_size, self.world_size);
        set!(p.knn_every, self.knn_every);
        set!(p.color_strength, self.color_strength.map(Some));
        set!(p.blur, self.blur.map(Some));
        set!(p.augment_on, self.augment_on);
        set!(p.decode_on, self.decode_on);
        set!(p.micro_batch, self.micro_batch.map(Some));
        set!(c.memory_limit, self.memory_limit.map(Some));
    }
}

impl FinetuneArgs {
    pub fn apply(&self, c: &mut Config) {
        set!(c.finetune.from_layer, self.ft_from_layer);
        set!(c.finetune.label_fraction, self.label_fraction);
        set!(c.finetune.labels_per_class, self.labels_per_class.map(Some));
    }
}

impl DistillArgs {
    pub fn apply(&self, c: &mut Config) {
        set!(c.student_model, self.student_model.clone().map(Some));
        set!(c.distill.alpha, self.alpha);
        set!(c.distill.temperature, self.distill_temperature);
    }
}

impl LinearEvalArgs {
    pub fn apply(&self, c: &mut Config) {
        set!(c.linear_eval.label_fraction, self.linear_eval_fraction);
    }
}
