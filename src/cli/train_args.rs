//! Flags every training-style subcommand shares. Precedence: built-in defaults < `--config
//! FILE.toml` < `--set KEY=VALUE` < the named flags. Each subcommand flattens only the groups it
//! uses (see `stage_args`), so its `--help` lists only flags that change what it does.

use super::stage_args::OptimArgs;
use crate::train::Config;
use crate::Result;
use std::path::PathBuf;

/// Data, device and output: what every command that opens a dataset needs (`eval` included).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DataArgs {
    /// TOML file with any configuration keys (see configs/); the flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Set any configuration key, as in the TOML: `--set finetune.lr=0.1`, `--set
    /// pretrain.knn_every=2` (repeatable; applied after --config, before the named flags).
    /// `pipeline` also takes `--STAGE.KEY VALUE` (e.g. `--finetune.lr 0.1`) as a short form.
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// synthetic (built in), mnist, fashion-mnist, cifar10, cifar100, folder (ImageNet layout:
    /// train/<class>/*.JPEG, val/<class>/...) or list (train.txt, val.txt: `<path> <label>`).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Directory holding the dataset's files (downloaded copies or the image folder).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Training resolution in pixels (default: the dataset's image side).
    #[arg(long, value_name = "PX")]
    pub image_size: Option<usize>,
    /// Synthetic dataset: number of training images.
    #[arg(long, value_name = "N")]
    pub synthetic_train: Option<usize>,
    /// Synthetic dataset: number of test images.
    #[arg(long, value_name = "N")]
    pub synthetic_test: Option<usize>,
    /// cpu, cuda, cuda:N or auto (the GPU when there is one).
    #[arg(long)]
    pub device: Option<String>,
    /// Seed of initialisation, augmentation, shuffling and label subsets.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output directory (checkpoints, config.toml, metrics.jsonl, tensorboard/, summary.json,
    /// metrics.png).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Loader worker threads (0: one per core).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Image folders and lists: fail (stop at an unreadable image, naming it) or skip (warn
    /// once naming it and use the next readable image).
    #[arg(long, value_name = "fail|skip")]
    pub bad_images: Option<String>,
    /// Activation dtype: f32, bf16 (CUDA only, fp32 master weights) or auto (bf16 on a GPU).
    #[arg(long)]
    pub precision: Option<String>,
}

/// How a training run runs and reports (not what it computes).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Encoder architecture, r{depth}_{w}x_sk{0|1} (e.g. r50_1x_sk1; r50_0.25x_sk1 for a CPU).
    /// SK convs sit in bottleneck blocks (depth 50+); on r18/r34, sk1 means the ResNet-D stem
    /// and shortcuts only, as in the official code.
    #[arg(long)]
    pub model: Option<String>,
    /// Continue from the last saved state in --out, in the same run record.
    #[arg(long)]
    pub resume: bool,
    /// Recompute BN + ReLU outputs in backward instead of keeping them (less memory).
    #[arg(long)]
    pub recompute: bool,
    /// cuDNN convolution algorithms: deterministic (the same bits on every run, so --resume and
    /// CUDA graph replays match exactly) or fastest (nondeterministic ones too, as PyTorch's
    /// default) [default: deterministic].
    #[arg(long, value_name = "deterministic|fastest")]
    pub conv_algorithms: Option<String>,
    /// Write a metrics record (metrics.jsonl, TensorBoard) every this many steps [default: 10];
    /// pretraining's loss and accuracy there are means over the steps since the last record.
    #[arg(long, value_name = "STEPS")]
    pub log_every: Option<usize>,
    /// When the output is not a terminal, print a progress line at most every this many
    /// seconds (0: every step) [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub progress_every: Option<f64>,
    /// Data parallelism (mpirun, srun, torchrun, or --world-size on GPUs): seconds a collective
    /// may wait for the other ranks before the job ends with an error naming the rank and the
    /// collective [default: 300].
    #[arg(long, value_name = "SECONDS")]
    pub dist_timeout_s: Option<f64>,
    /// Data parallelism: MiB of gradients per all-reduce bucket, started while backward still
    /// runs [default: 25].
    #[arg(long, value_name = "MIB")]
    pub bucket_mb: Option<f64>,
    /// Print the time per phase, op and layer of the third training step of the first stage
    /// run (nothing if it has fewer); on a GPU that step waits for the device at every range.
    #[arg(long)]
    pub profile: bool,
    /// Testing aid: stop each stage after this many epochs, as if interrupted.
    #[arg(long, hide = true)]
    pub stop_after_epochs: Option<usize>,
    /// Renamed --head-depth.
    #[arg(long, hide = true, value_name = "N")]
    pub proj_layers: Option<String>,
    /// Renamed --ft-from-layer.
    #[arg(long, hide = true, value_name = "N")]
    pub proj_layer: Option<String>,
}

/// Sets `field` when the flag was given.
macro_rules! set {
    ($field:expr, $v:expr) => {
        if let Some(v) = $v.clone() {
            $field = v.into();
        }
    };
}
pub(super) use set;

impl DataArgs {
    /// Defaults < TOML < --set < these flags.
    pub fn config(&self) -> Result<Config> {
        let mut c = crate::train::config_keys::load(self.config.as_deref(), &self.set)?;
        set!(c.dataset, self.dataset);
        set!(c.device, self.device);
        set!(c.seed, self.seed);
        set!(c.out, self.out);
        set!(c.workers, self.workers);
        set!(c.bad_images, self.bad_images);
        set!(c.synthetic_train, self.synthetic_train);
        set!(c.synthetic_test, self.synthetic_test);
        set!(c.precision, self.precision);
        if self.data_dir.is_some() {
            c.data_dir = self.data_dir.clone();
        }
        if self.image_size.is_some() {
            c.image_size = self.image_size;
        }
        Ok(c)
    }
}

impl RunArgs {
    pub fn apply(&self, c: &mut Config) -> Result<()> {
        for (old, new) in [
            (&self.proj_layers, "--head-depth"),
            (&self.proj_layer, "--ft-from-layer"),
        ] {
            if old.is_some() {
                let name = if new == "--head-depth" {
                    "--proj-layers"
                } else {
                    "--proj-layer"
                };
                return Err(crate::Error::Config(format!(
                    "{name} was renamed {new} (see --help)"
                )));
            }
        }
        set!(c.model, self.model);
        set!(c.log_every, self.log_every);
        set!(c.progress_every, self.progress_every);
        set!(c.dist_timeout_s, self.dist_timeout_s);
        set!(c.bucket_mb, self.bucket_mb);
        set!(c.conv_algorithms, self.conv_algorithms);
        if self.recompute {
            c.recompute = true;
        }
        Ok(())
    }
}

/// The step `--profile` times: the first two warm up allocators and caches.
const PROFILED_STEP: usize = 3;

/// Opens a training run: validates, prints and saves the resolved configuration.
pub fn open_env(cfg: Config, run: &RunArgs) -> Result<crate::train::Env> {
    let mut env = crate::train::Env::open(cfg, run.resume)?;
    env.record_config()?;
    env.stop_after_epochs = run.stop_after_epochs;
    if run.profile {
        crate::profile::arm(PROFILED_STEP, env.device)?;
    }
    Ok(env)
}

/// Which stages the optimisation flags apply to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scope {
    Pretrain,
    Finetune,
    Distill,
    LinearEval,
    All,
}

impl OptimArgs {
    pub fn apply(&self, c: &mut Config, scope: Scope) {
        let on = |s: Scope| scope == Scope::All || scope == s;
        macro_rules! stage {
            ($sec:expr) => {{
                set!($sec.epochs, self.epochs);
                set!($sec.batch_size, self.batch_size);
                set!($sec.lr, self.lr);
                set!($sec.lr_scaling, self.lr_scaling);
                set!($sec.warmup, self.warmup);
                set!($sec.weight_decay, self.weight_decay);
            }};
        }
        if on(Scope::Pretrain) {
            stage!(c.pretrain);
        }
        if on(Scope::Finetune) {
            stage!(c.finetune);
        }
        if on(Scope::Distill) {
            stage!(c.distill);
        }
        if on(Scope::LinearEval) {
            stage!(c.linear_eval);
        }
    }
}
