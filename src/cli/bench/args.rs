//! `simclr bench`'s flags. The sizes default by device: the paper's r50_1x at 224 px on a GPU,
//! and on the CPU a step small enough that a bare `simclr bench` ends within seconds.

use crate::{Device, DeviceRequest};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchTask {
    /// SimCLRv2 pretraining: two views, encoder + 3-layer head, NT-Xent, LARS.
    Pretrain,
    /// Supervised: encoder + linear classifier, cross-entropy, LARS.
    Supervised,
    /// The input pipeline alone on an image folder (`--data-dir`): decode + two-view
    /// augmentation, images/s and per CPU core (bench/input.rs).
    Input,
}

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Architecture [default: r50_1x_sk1 on a GPU, r50_0.25x_sk1 on the CPU].
    #[arg(long)]
    pub model: Option<String>,
    /// Images per step (pretraining runs two views of each through the encoder) [default: 32].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Image side in pixels [default: 224 on a GPU, 64 on the CPU].
    #[arg(long)]
    pub image_size: Option<usize>,
    /// What one step trains: pretrain (two views, NT-Xent) or supervised (one view, cross-entropy).
    #[arg(long, value_enum, default_value = "pretrain")]
    pub task: BenchTask,
    /// Pretraining only: images per micro-batch (gradient caching; two views each).
    #[arg(long)]
    pub micro_batch: Option<usize>,
    /// Untimed steps before the timed ones [default: 2 on a GPU, 1 on the CPU].
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Timed steps [default: 5 on a GPU, 3 on the CPU].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Learning rate of the LARS steps (not scaled by the batch).
    #[arg(long, default_value_t = 0.3)]
    pub lr: f64,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceRequest,
    /// Plan against this many GiB instead of what the device has free.
    #[arg(long)]
    pub memory_limit: Option<f64>,
    /// Recompute BN + ReLU outputs in backward instead of keeping them.
    #[arg(long)]
    pub recompute: bool,
    /// Activation dtype: f32, bf16 (CUDA only; fp32 master weights), or auto (bf16 on a GPU).
    #[arg(long, default_value = "auto")]
    pub precision: String,
    /// Skip the memory plan (no probe steps).
    #[arg(long)]
    pub no_plan: bool,
    /// After the timed steps, profile one more and print its time per phase, op and layer
    /// (on a GPU the device is synchronised at every range boundary, which slows that step).
    #[arg(long)]
    pub profile: bool,
    /// Replay the steady-state step as a CUDA graph: auto (when the step can be captured, else
    /// eager with a message), on (an error if it cannot), off.
    #[arg(long, value_enum, default_value = "auto")]
    pub cuda_graph: crate::train::graph_step::GraphMode,
    /// cuDNN convolution algorithms: deterministic (the same bits on every run) or fastest
    /// (nondeterministic ones too, as PyTorch's default, which its side-by-side scripts use).
    #[arg(long, value_enum, default_value = "deterministic")]
    pub conv_algorithms: crate::ops::conv2d::ConvAlgorithms,
    /// `--task input`: the options of that task (folder, workers, step comparison).
    #[command(flatten)]
    pub input: super::input::InputArgs,
}

impl BenchArgs {
    /// Fills the unset sizes: the paper's r50_1x at 224 px on a GPU, and on the CPU a step small
    /// enough that the whole bench takes seconds (a 224 px r50_1x step there takes minutes).
    pub(super) fn resolved(&self, device: Device) -> Self {
        let gpu = matches!(device, Device::Cuda(_));
        let pick = |g: usize, c: usize| if gpu { g } else { c };
        let mut a = self.clone();
        let model = if gpu { "r50_1x_sk1" } else { "r50_0.25x_sk1" };
        a.model.get_or_insert_with(|| model.to_string());
        a.batch_size.get_or_insert(32);
        a.image_size.get_or_insert(pick(224, 64));
        a.warmup.get_or_insert(pick(2, 1));
        a.steps.get_or_insert(pick(5, 3));
        a
    }
    pub(super) fn model(&self) -> &str {
        self.model.as_deref().unwrap_or_default()
    }
    pub(super) fn batch(&self) -> usize {
        self.batch_size.unwrap_or_default()
    }
    pub(super) fn size(&self) -> usize {
        self.image_size.unwrap_or_default()
    }
    pub(super) fn steps(&self) -> usize {
        self.steps.unwrap_or_default()
    }
    pub(super) fn warmup(&self) -> usize {
        self.warmup.unwrap_or_default()
    }
    /// Rows of views per micro-batch.
    pub(super) fn micro_rows(&self, rows_per_image: usize) -> Option<usize> {
        self.micro_batch.map(|m| m * rows_per_image)
    }
}
