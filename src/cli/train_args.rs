//! Flags shared by the training subcommands. Each overrides the value from `--config FILE.toml`,
//! which overrides the built-in defaults. `--epochs`, `--batch-size` and `--lr` apply to the
//! stage being run (to every stage for `pipeline`).

use crate::train::Config;
use crate::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct CommonArgs {
    /// TOML file with any of the configuration keys; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Architecture, r{depth}_{w}x_sk{0|1} (e.g. r50_1x_sk1; r50_0.25x_sk1 for a CPU). SK convs
    /// sit in bottleneck blocks (depth 50+); on r18/r34, sk1 means the ResNet-D stem and
    /// shortcuts only, as in the official code.
    #[arg(long)]
    pub model: Option<String>,
    /// synthetic (built in), mnist, fashion-mnist, cifar10, cifar100 or folder.
    #[arg(long)]
    pub dataset: Option<String>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Training resolution (default: the dataset's image side).
    #[arg(long)]
    pub image_size: Option<usize>,
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Base learning rate (scaled by sqrt(B) or B/256, see the config's lr_scaling).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Contrastive temperature (pretraining).
    #[arg(long)]
    pub temperature: Option<f64>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long)]
    pub device: Option<String>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output directory (checkpoints, metrics.jsonl, summary.json, metrics.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the last end-of-epoch state in --out.
    #[arg(long)]
    pub resume: bool,
    /// Loader worker threads (0: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Synthetic dataset: training and test images.
    #[arg(long)]
    pub synthetic_train: Option<usize>,
    #[arg(long)]
    pub synthetic_test: Option<usize>,
    /// Fine-tuning: keep the projection head up to this layer (0 = encoder output).
    #[arg(long)]
    pub proj_layer: Option<usize>,
    /// Fine-tuning: class-balanced fraction of the labels, in (0, 1].
    #[arg(long)]
    pub label_fraction: Option<f64>,
    /// Linear evaluation: class-balanced fraction of the labels its classifier trains on (default
    /// 1: all; 0.01 / 0.1 as in the paper's tables).
    #[arg(long)]
    pub linear_eval_fraction: Option<f64>,
    /// Fine-tuning: labelled images per class (instead of --label-fraction).
    #[arg(long)]
    pub labels_per_class: Option<usize>,
    /// Pretraining: projection-head layers (2-4).
    #[arg(long)]
    pub proj_layers: Option<usize>,
    /// Pretraining: colour distortion strength (default: 1.0 above 64 px, 0.5 at CIFAR sizes).
    #[arg(long)]
    pub color_strength: Option<f64>,
    /// Pretraining: Gaussian blur, true or false (default: on above 64 px, off at CIFAR sizes).
    #[arg(long)]
    pub blur: Option<bool>,
    /// Pretraining: memory-queue size (0: no momentum encoder).
    #[arg(long)]
    pub queue_size: Option<usize>,
    /// Activation dtype: f32, bf16 (CUDA only, fp32 master weights) or auto (bf16 on a GPU).
    #[arg(long)]
    pub precision: Option<String>,
    /// Check pretraining's memory against this many GiB before the first step (on a GPU the
    /// check always runs, against its free memory by default).
    #[arg(long)]
    pub memory_limit: Option<f64>,
    /// Recompute BN + ReLU outputs in backward instead of keeping them (less memory).
    #[arg(long)]
    pub recompute: bool,
    /// Pretraining: run the network on at most this many views at a time (gradient caching;
    /// the loss still sees the whole batch).
    #[arg(long)]
    pub micro_batch: Option<usize>,
    /// Pretraining: data-parallel ranks, one thread each (one GPU each with CUDA), each on a
    /// disjoint share of every batch, with synchronised batch norm and global negatives.
    #[arg(long)]
    pub world_size: Option<usize>,
    /// Multi-process jobs (mpirun, srun, torchrun): seconds a collective may wait for the other
    /// ranks before the job ends with an error naming the rank and the collective.
    #[arg(long)]
    pub dist_timeout_s: Option<f64>,
    /// Distillation: student architecture (default: the teacher's).
    #[arg(long)]
    pub student_model: Option<String>,
    /// Distillation: weight of the distillation term (1 = unlabelled only).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Distillation: softmax temperature.
    #[arg(long)]
    pub distill_temperature: Option<f64>,
    /// Print the time per phase, op and layer of the third training step of the first stage
    /// run (nothing if it has fewer); on a GPU that step waits for the device at every range.
    #[arg(long)]
    pub profile: bool,
    /// Testing aid: stop each stage after this many epochs, as if interrupted.
    #[arg(long, hide = true)]
    pub stop_after_epochs: Option<usize>,
}

/// The step `--profile` times: the first two warm up allocators and caches.
const PROFILED_STEP: usize = 3;

/// Which stages `--epochs`, `--batch-size` and `--lr` apply to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Pretrain,
    Finetune,
    Distill,
    LinearEval,
    All,
}

impl CommonArgs {
    pub fn config(&self, scope: Scope) -> Result<Config> {
        let mut c = match &self.config {
            Some(p) => Config::from_file(p)?,
            None => Config::default(),
        };
        macro_rules! set {
            ($field:expr, $v:expr) => {
                if let Some(v) = $v.clone() {
                    $field = v;
                }
            };
        }
        set!(c.model, self.model);
        set!(c.dataset, self.dataset);
        set!(c.device, self.device);
        set!(c.seed, self.seed);
        set!(c.out, self.out);
        set!(c.workers, self.workers);
        set!(c.synthetic_train, self.synthetic_train);
        set!(c.synthetic_test, self.synthetic_test);
        set!(c.pretrain.temperature, self.temperature);
        set!(c.pretrain.proj_layers, self.proj_layers);
        set!(c.pretrain.queue_size, self.queue_size);
        set!(c.pretrain.color_strength, self.color_strength.map(Some));
        set!(c.pretrain.blur, self.blur.map(Some));
        set!(c.pretrain.micro_batch, self.micro_batch.map(Some));
        set!(c.pretrain.world_size, self.world_size);
        set!(c.dist_timeout_s, self.dist_timeout_s);
        set!(c.precision, self.precision);
        set!(c.memory_limit, self.memory_limit.map(Some));
        if self.recompute {
            c.recompute = true;
        }
        set!(c.finetune.proj_layer, self.proj_layer);
        set!(c.finetune.label_fraction, self.label_fraction);
        set!(c.linear_eval.label_fraction, self.linear_eval_fraction);
        set!(c.distill.alpha, self.alpha);
        set!(c.distill.temperature, self.distill_temperature);
        if self.data_dir.is_some() {
            c.data_dir = self.data_dir.clone();
        }
        if self.image_size.is_some() {
            c.image_size = self.image_size;
        }
        if self.labels_per_class.is_some() {
            c.finetune.labels_per_class = self.labels_per_class;
        }
        if self.student_model.is_some() {
            c.student_model = self.student_model.clone();
        }
        let all = scope == Scope::All;
        if all || scope == Scope::Pretrain {
            set!(c.pretrain.epochs, self.epochs);
            set!(c.pretrain.batch_size, self.batch_size);
            set!(c.pretrain.lr, self.lr);
        }
        if all || scope == Scope::Finetune {
            set!(c.finetune.epochs, self.epochs);
            set!(c.finetune.batch_size, self.batch_size);
            set!(c.finetune.lr, self.lr);
        }
        if all || scope == Scope::Distill {
            set!(c.distill.epochs, self.epochs);
            set!(c.distill.batch_size, self.batch_size);
            set!(c.distill.lr, self.lr);
        }
        if all || scope == Scope::LinearEval {
            set!(c.linear_eval.epochs, self.epochs);
            set!(c.linear_eval.batch_size, self.batch_size);
            set!(c.linear_eval.lr, self.lr);
        }
        Ok(c)
    }

    pub fn env(&self, scope: Scope) -> Result<crate::train::Env> {
        let mut env = crate::train::Env::open(self.config(scope)?, self.resume)?;
        env.stop_after_epochs = self.stop_after_epochs;
        if self.profile {
            crate::profile::arm(PROFILED_STEP, env.device)?;
        }
        Ok(env)
    }
}
