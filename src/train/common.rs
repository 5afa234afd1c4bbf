//! What every stage shares: the opened dataset and device, optimizer and schedule
//! construction, batch assembly, evaluation and the progress line.

use super::config::Config;
use super::model::Classifier;
use super::run_dir::RunDir;
use crate::autograd::Tape;
use crate::data::{
    open_dataset, AugmentConfig, Dataset, DatasetSpec, EvalTransform, Loader, LoaderConfig, Splits,
};
use crate::nn::ActivationPolicy;
use crate::ops;
use crate::optim::{Lars, LarsConfig, LrScaling, LrSchedule, Warmup};
use crate::params::ParamStore;
use crate::{DType, Device, Error, Result, Tensor};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// A run's fixed context.
pub struct Env {
    pub cfg: Config,
    pub splits: Splits,
    pub device: Device,
    pub image_size: usize,
    pub run: RunDir,
    /// Continue from `<stage>.state.safetensors` where one exists.
    pub resume: bool,
    /// Testing aid: stop a stage after this many epochs of this process, as if interrupted.
    pub stop_after_epochs: Option<usize>,
    /// This process's place in a multi-process job (a world of one without a launcher).
    pub launch: crate::comm::launch::Launch,
    /// The communicator of this rank when the world has more than one process.
    pub comm: Option<crate::comm::Comm>,
}

impl Env {
    pub fn open(cfg: Config, resume: bool) -> Result<Self> {
        cfg.validate()?;
        let launch = crate::comm::launch::from_env()?;
        super::dist_run::check(&cfg, &launch)?;
        let device = launch.device_request(&cfg.device)?.resolve()?;
        if cfg.precision == "bf16" && device == Device::Cpu {
            return Err(Error::Config(
                "--precision bf16 needs the CUDA backend (--device cuda); the CPU computes in f32"
                    .into(),
            ));
        }
        let algorithms = crate::ops::conv2d::ConvAlgorithms::parse(
            "conv_algorithms (--conv-algorithms)",
            &cfg.conv_algorithms,
        )?;
        crate::ops::conv2d::use_conv_algorithms(algorithms, device, "--conv-algorithms")?;
        let run = match launch.is_writer() {
            true => RunDir::open(&cfg.out, resume)?,
            false => RunDir::follower(&cfg.out),
        };
        let spec = DatasetSpec {
            name: cfg.dataset.clone(),
            data_dir: cfg.data_dir.clone(),
            seed: cfg.seed,
            synthetic_train: cfg.synthetic_train,
            synthetic_test: cfg.synthetic_test,
            // Folders default to their own images' side, not a fixed one.
            image_size: crate::data::native_size::stored_side(
                &cfg.dataset,
                cfg.data_dir.as_deref(),
                cfg.image_size,
            )?,
            // Folders and lists stream full pictures; the random crops come from all of each.
            preload: false,
            bad_images: cfg.bad_images.parse()?,
        };
        let splits = open_dataset(&spec)?;
        super::config_checks::check_train_split(&cfg, &splits)?;
        let native = if matches!(cfg.dataset.as_str(), "folder" | "list") {
            spec.image_size
        } else {
            splits.train.image(0)?.height
        };
        let image_size = cfg.image_size.unwrap_or(native);
        let comm = super::dist_run::join(&cfg, &launch, device)?;
        Ok(Env {
            cfg,
            splits,
            device,
            image_size,
            run,
            resume,
            stop_after_epochs: None,
            comm,
            launch,
        })
    }

    /// Prints the resolved configuration and saves it as `config.toml` (see `config_keys`).
    pub fn record_config(&self) -> Result<()> {
        super::config_keys::record(self)
    }

    /// The activation dtype and recomputation the configuration asks for on this device.
    pub fn activations(&self) -> ActivationPolicy {
        let bf16 = match self.cfg.precision.as_str() {
            "bf16" => true,
            "auto" => matches!(self.device, Device::Cuda(_)),
            _ => false,
        };
        ActivationPolicy {
            compute: bf16.then_some(crate::DType::BF16),
            recompute: self.cfg.recompute,
        }
    }

    pub fn channels(&self) -> usize {
        self.splits.train.channels()
    }

    pub fn num_classes(&self) -> usize {
        self.splits.train.num_classes()
    }

    pub fn workers(&self) -> usize {
        if self.cfg.workers == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        } else {
            self.cfg.workers
        }
    }

    pub fn loader_config(
        &self,
        batch_size: usize,
        views: usize,
        indices: Option<Vec<usize>>,
        shuffle: bool,
    ) -> LoaderConfig {
        LoaderConfig {
            batch_size,
            views,
            seed: self.cfg.seed,
            shuffle,
            workers: self.workers(),
            prefetch: 2,
            drop_last: shuffle,
            indices,
            shard: None,
        }
    }

    pub fn augment_config(&self) -> AugmentConfig {
        AugmentConfig::for_size(self.image_size)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.run.file(name)
    }

    /// The stage's state file and where to start: the saved position and extra tensors when
    /// `--resume` finds one, else the beginning.
    #[allow(clippy::type_complexity)]
    pub fn resume_state(
        &mut self,
        stage: &str,
        store: &mut ParamStore,
        opt: &mut crate::optim::Lars,
    ) -> Result<(
        PathBuf,
        super::state::Position,
        Option<std::collections::HashMap<String, Tensor>>,
    )> {
        let path = self.path(&format!("{stage}.state.safetensors"));
        let config = Some(super::resume_check::fingerprint(&self.cfg, stage));
        if self.resume && path.exists() {
            super::resume_check::check(&path, &self.cfg, stage)?;
            let (mut pos, extra) = super::state::load(&path, store, opt, self.cfg.seed)?;
            pos.config = config;
            self.run.forget_after(stage, pos.step)?;
            println!(
                "{stage}: resuming after epoch {} (step {})",
                pos.epochs_done, pos.step
            );
            return Ok((path, pos, Some(extra)));
        }
        self.run.forget_after(stage, 0)?;
        Ok((
            path,
            super::state::Position {
                seed: self.cfg.seed,
                config,
                ..Default::default()
            },
            None,
        ))
    }

    /// A fresh parameter store on the run's device (fp32 master weights).
    pub fn store(&self, seed_offset: u64) -> ParamStore {
        ParamStore::new(DType::F32, self.cfg.seed.wrapping_add(seed_offset))
    }
}

/// The config's `lr_scaling` name ("sqrt" or "linear", validated) with its base rate.
pub fn lr_scaling(scaling: &str, base: f64) -> LrScaling {
    if scaling == "linear" {
        LrScaling::Linear { base }
    } else {
        LrScaling::Sqrt { base }
    }
}

pub fn schedule(
    scaling: &str,
    base: f64,
    batch: usize,
    warmup: f64,
    total_steps: usize,
) -> Result<LrSchedule> {
    LrSchedule::new(
        lr_scaling(scaling, base),
        batch,
        Warmup::Fraction(warmup),
        total_steps.max(1),
    )
}

pub fn lars(weight_decay: f64) -> Lars {
    Lars::new(LarsConfig {
        weight_decay,
        ..LarsConfig::default()
    })
}

/// Stacks batches along the first dimension (two views → one batch of 2B), on the host.
pub fn stack(parts: &[Tensor]) -> Result<Tensor> {
    let mut shape = parts[0].shape().to_vec();
    let mut data: Vec<f32> = Vec::with_capacity(parts.iter().map(|t| t.numel()).sum());
    for p in parts {
        if p.shape()[1..] != shape[1..] {
            return Err(Error::shape(
                "stack",
                format!("{:?} and {:?}", parts[0].shape(), p.shape()),
            ));
        }
        data.extend_from_slice(p.cpu_slice::<f32>("stack")?);
    }
    shape[0] = parts.iter().map(|t| t.shape()[0]).sum();
    Tensor::from_vec(data, &shape)
}

/// Where a training step stands, for its metrics line.
pub struct StepInfo<'a> {
    pub stage: &'static str,
    pub epoch: usize,
    pub lr: f64,
    pub images: usize,
    pub started: Instant,
    pub progress: &'a super::progress::Progress,
}

/// The end of a supervised-style step: backward from `loss`, one LARS step, then the metrics
/// line (every `log_every` steps and at the stage's last) and the progress bar. Returns the loss value.
pub fn finish_step(
    env: &mut Env,
    tape: Tape,
    loss: &crate::autograd::Var,
    store: &mut ParamStore,
    opt: &mut crate::optim::Lars,
    pos: &mut super::state::Position,
    info: StepInfo,
) -> Result<f64> {
    // In a multi-process job `loss` is this rank's part (dist_run::rank_loss).
    let lv = super::dist_run::global_loss(env, loss.value().item()?)?;
    super::guard::check_loss(info.stage, pos.step, info.epoch, lv, info.lr)?;
    tape.backward(loss, store)?;
    super::dist_run::reduce_grads(env, store)?;
    super::guard::check_grads(info.stage, pos.step, info.epoch, store)?;
    opt.step(store, info.lr)?;
    pos.step += 1;
    let ips = info.images as f64 / info.started.elapsed().as_secs_f64();
    if info.progress.log_due(pos.step, env.cfg.log_every) {
        env.run.log(super::run_dir::step_record(
            info.stage, info.epoch, pos.step, lv, info.lr, ips,
        ))?;
    }
    info.progress.update(super::progress::Report {
        epoch: info.epoch,
        step: pos.step,
        loss: lv,
        lr: info.lr,
        images_per_s: ips,
    });
    Ok(lv)
}

pub struct EvalResult {
    pub top1: f64,
    pub top5: f64,
    pub loss: f64,
}

/// Top-1 / top-5 accuracy and mean cross-entropy of a classifier on `dataset`, BN in eval mode,
/// with the evaluation transform (centre crop + resize).
pub fn evaluate(
    env: &Env,
    clf: &Classifier,
    store: &mut ParamStore,
    dataset: Arc<dyn Dataset>,
) -> Result<EvalResult> {
    let transform = Arc::new(EvalTransform::new(env.augment_config())?);
    let loader = Loader::new(dataset, transform, env.loader_config(256, 1, None, false))?;
    let k = 5.min(env.num_classes());
    let (mut top1, mut top5, mut loss, mut n) = (0usize, 0usize, 0.0, 0usize);
    let policy = env.activations();
    for batch in loader.epoch(0) {
        let b = batch?;
        let mut tape = Tape::inference();
        let x = tape.constant(b.views[0].to_device(env.device)?);
        let logits = clf.logits(&mut policy.ctx(&mut tape, store, false), &x)?;
        let (l, _) = ops::loss::cross_entropy_forward(logits.value(), &b.labels)?;
        loss += l.item()? * b.labels.len() as f64;
        let v = logits.value().to_vec_f64()?;
        let c = logits.value().last_dim();
        for (row, &label) in v.chunks(c).zip(&b.labels) {
            let (h1, hk) = super::guard::hits(row, label, k);
            top1 += h1 as usize;
            top5 += hk as usize;
        }
        n += b.labels.len();
    }
    let n = n.max(1) as f64;
    Ok(EvalResult {
        top1: top1 as f64 / n,
        top5: top5 as f64 / n,
        loss: loss / n,
    })
}

/// Labelled subset: `labels_per_class` images of every class, or a class-balanced `fraction`;
/// deterministic per seed, sorted.
pub fn label_subset(
    ds: &dyn Dataset,
    fraction: f64,
    per_class: Option<usize>,
    seed: u64,
) -> Result<Vec<usize>> {
    let Some(n) = per_class else {
        return crate::data::class_balanced_subset(ds, fraction, seed);
    };
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); ds.num_classes()];
    for i in 0..ds.len() {
        by_class[ds.label(i)].push(i);
    }
    let mut rng = crate::Rng::derive(seed, 0x6c61_6265);
    // At most the whole dataset (a huge n is refused below, not allocated for).
    let mut out = Vec::with_capacity(n.saturating_mul(by_class.len()).min(ds.len()));
    for (c, mut members) in by_class.into_iter().enumerate() {
        if members.len() < n {
            return Err(Error::Config(format!(
                "--labels-per-class {n}: class {c} has only {} training images",
                members.len()
            )));
        }
        rng.shuffle(&mut members);
        out.extend_from_slice(&members[..n]);
    }
    out.sort_unstable();
    Ok(out)
}
