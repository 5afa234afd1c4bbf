//! Contrastive pretraining: two augmented views per image, encoder + projection head, NT-Xent on
//! L2-normalised projections; optionally a momentum (EMA) copy of the network whose projections
//! of recent batches sit in a queue as extra negatives.

use super::common::{lars, schedule, Env};
use super::config_checks;
use super::contrastive_step::{ContrastiveStep, GradSum};
use super::data_parallel::{Buckets, ThreadReplicas};
use super::epoch_loop::EpochLoop;
use super::graph_step::{GraphMode, GraphedStep};
use super::guard;
use super::knn_monitor::KnnMonitor;
use super::loss_window::LossWindow;
use super::memory_plan;
use super::model::{self, ModelMeta, SimClrNet};
use super::progress::{Progress, Report};
use super::run_dir::step_record;
use super::state;
use super::StageResult;
use crate::autograd::Tape;
use crate::comm;
use crate::ops;
use crate::optim::{BufferRule, DeviceLr, Ema};
use crate::params::ParamStore;
use crate::{Error, Result, Tensor};
use serde_json::json;
use std::time::Instant;

pub const STAGE: &str = "pretrain";

/// The memory: a ring of the most recent `capacity` momentum projections.
struct Queue {
    rows: Vec<f32>,
    dim: usize,
    capacity: usize,
    filled: usize,
    next: usize,
}

impl Queue {
    fn push(&mut self, z: &Tensor) -> Result<()> {
        let v = z.to_vec_f32()?;
        for row in v.chunks(self.dim) {
            self.rows[self.next * self.dim..(self.next + 1) * self.dim].copy_from_slice(row);
            self.next = (self.next + 1) % self.capacity;
            self.filled = (self.filled + 1).min(self.capacity);
        }
        Ok(())
    }
    fn tensor(&self, device: crate::Device) -> Result<Option<Tensor>> {
        if self.filled == 0 {
            return Ok(None);
        }
        Ok(Some(
            Tensor::from_vec(
                self.rows[..self.filled * self.dim].to_vec(),
                &[self.filled, self.dim],
            )?
            .to_device(device)?,
        ))
    }
}

pub fn meta(env: &Env) -> ModelMeta {
    ModelMeta {
        stage: STAGE.into(),
        model: env.cfg.model.clone(),
        image_size: env.image_size,
        in_channels: env.channels(),
        proj_layers: env.cfg.pretrain.head_depth,
        proj_dim: env.cfg.pretrain.proj_dim,
        proj_layer: 0,
        num_classes: env.num_classes(),
        stem_pool_padding: crate::nn::StemPoolPadding::Symmetric,
    }
}

pub fn run(env: &mut Env) -> Result<StageResult> {
    // The batch actually run (clamped to the data) is the one the rate and plan use.
    env.cfg.pretrain.batch_size = config_checks::pretrain_batch(&env.cfg, env.splits.train.len())?;
    let pc = env.cfg.pretrain.clone();
    if let Some(done) = super::resume_check::finished(env, STAGE, pc.epochs)? {
        return Ok(done);
    }
    let meta = meta(env);
    let mut store = env.store(0);
    let net = SimClrNet::new(&mut store, meta.clone())?;
    store.to(env.device, crate::DType::F32)?;
    // Multi-process data parallelism reduces the gradients in buckets during backward.
    let buckets = Buckets::new(&store, env.cfg.bucket_mb)?;
    let memory = pc.queue_size > 0;
    let ema = Ema::new(pc.ema_momentum, BufferRule::Copy)?;
    let mut ema_store = ParamStore::new(crate::DType::F32, 0);
    let ema_net = SimClrNet::new(&mut ema_store, meta.clone())?;
    if memory {
        ema_store.to(env.device, crate::DType::F32)?;
        Ema::sync(&mut ema_store, &store)?;
    }
    let mut queue = Queue {
        rows: vec![0.0; pc.queue_size * pc.proj_dim],
        dim: pc.proj_dim,
        capacity: pc.queue_size.max(1),
        filled: 0,
        next: 0,
    };

    let aug = super::augment_choice::for_env(env);
    // In a multi-process job, this rank's share of every global batch.
    let mut input = super::input::TrainInput::new(env, aug, pc.batch_size)?;
    let per_epoch = input.batches_per_epoch();
    let total = guard::total_steps(STAGE, pc.epochs, per_epoch)?;
    let sched = schedule(&pc.lr_scaling, pc.lr, pc.batch_size, pc.warmup, total)?;
    let mut opt = lars(pc.weight_decay);

    let (state_path, mut pos, extra) = env.resume_state(STAGE, &mut store, &mut opt)?;
    if let (Some(extra), true) = (extra, memory) {
        state::restore_prefixed(&mut ema_store, &extra, "ema", &state_path)?;
        if let Some(q) = extra.get("queue") {
            let v = q.to_vec_f32()?;
            queue.rows[..v.len()].copy_from_slice(&v);
        }
        (queue.filled, queue.next) = (pos.queue_filled, pos.queue_next);
    }

    super::dist_run::start(env, &mut [&mut store, &mut ema_store], &pos)?;
    if env.cfg.memory_limit.is_some() || matches!(env.device, crate::Device::Cuda(_)) {
        check_memory(env, &net, &mut store)?;
    }
    // The summary of cuDNN's choices is taken after the first step (one step's convolutions,
    // not the memory probes') and printed after its epoch.
    crate::ops::conv2d::mark_choices(env.device)?;
    let mut choices_taken = !env.run.is_writer();
    let mut step_choices = None;
    let policy = env.activations();
    // Data parallelism: rank 0 is this store; replicas (copied after any resume) the others.
    // A world of one is the single-process step (micro-batched or not).
    let mut replicas = match pc.world_size {
        w if w > 1 => {
            // --dist-timeout-s was checked positive and finite (dist_run::check).
            let timeout = std::time::Duration::try_from_secs_f64(env.cfg.dist_timeout_s)
                .unwrap_or(ThreadReplicas::DEFAULT_TIMEOUT);
            let fresh = || {
                let mut s = env.store(0);
                SimClrNet::new(&mut s, meta.clone())?;
                Ok((s, lars(pc.weight_decay)))
            };
            Some(ThreadReplicas::with_timeout(
                w, &store, &opt, fresh, timeout,
            )?)
        }
        _ => None,
    };

    let knn = match pc.knn_every {
        0 => None,
        _ => Some(KnnMonitor::new(
            super::finetune::labelled_indices(env)?,
            env.splits.test.len(),
            pc.knn_test_images,
        )?),
    };
    let mut last_knn = None;
    // --micro-batch counts images; the network sees two views of each.
    let micro_rows = pc.micro_batch.map(|m| 2 * m);
    let progress = Progress::new(STAGE, total, pc.epochs, env.cfg.progress_every)
        .shown_if(env.run.is_writer());
    let started = Instant::now();
    let (mut last_loss, mut last_acc, mut images) = (f64::NAN, f64::NAN, 0usize);
    // Loss and accuracy summed on the device between log lines (read once per line).
    let mut window = LossWindow::new();
    let mut shown = f64::NAN;
    let mut graph = pretrain_graph(&pc.cuda_graph, env, replicas.is_some(), micro_rows, memory)?;
    // The captured step reads one batch address (every upload rewrites it) and its rate from
    // the schedule on the device (a replay cannot take a new rate as a parameter).
    let device_lr = if graph.enabled() {
        input.keep_fixed();
        let rates: Vec<f64> = (0..total).map(|s| sched.lr_at(s)).collect();
        Some(DeviceLr::new(env.device, &rates, pos.step)?)
    } else {
        None
    };
    let epochs = EpochLoop::new(env, STAGE, pc.epochs, per_epoch, state_path);
    for epoch in epochs.epochs(&pos) {
        let (mut sum_loss, mut sum_acc, mut n_batches) = (0.0, 0.0, 0usize);
        let t_epoch = Instant::now();
        let skip = epochs.skip(&pos, epoch);
        for batch in input.epoch(epoch as u64, skip)? {
            epochs.before_step(env, &pos);
            let b = batch?;
            let t0 = Instant::now();
            let lr = sched.lr_at(pos.step);
            let x_all = b.x;
            if let (true, Some(d)) = (b.moved, &device_lr) {
                // A new batch buffer (first step, or new shapes): capture again after warm-up.
                graph.reset();
                d.set_step(pos.step)?;
            }
            let negatives = if memory {
                queue.tensor(env.device)?
            } else {
                None
            };
            let (x, q, tau) = (&x_all, negatives.as_ref(), pc.temperature);
            let step = ContrastiveStep::new(tau, policy)
                .micro(micro_rows)
                .queue(q)
                .comm(env.comm.as_ref())
                .grad_sum(GradSum::Buckets(&buckets));
            let host = match (replicas.as_mut(), env.comm.is_some(), &device_lr) {
                // One rank of several processes: read at once, as every rank must agree.
                (_, true, _) => Some(step.run(&net, &mut store, x)?.read()?),
                (Some(r), false, _) => Some(r.step(&net, &mut store, x, tau, q, lr, policy)?),
                (None, false, Some(d)) => {
                    // Forward, backward, the loss sums and LARS at the device schedule's rate
                    // as one graph launch once captured. (The graph runs only without ranks,
                    // micro-batches or a queue.)
                    let mut ran = false;
                    graph.step(&mut || {
                        ran = true;
                        let s = step.run(&net, &mut store, x)?;
                        window.add(&s)?;
                        opt.step_scheduled(&mut store, d)
                    })?;
                    if !ran {
                        window.add_replayed();
                    }
                    None
                }
                (None, false, None) => {
                    // Left where it was computed: nothing is read back in the step.
                    window.add(&step.run(&net, &mut store, x)?)?;
                    None
                }
            };
            if let Some((loss_v, acc)) = host {
                // Read already: checked before the update, as always.
                guard::check_loss(STAGE, pos.step, epoch, loss_v, lr)?;
                window.add_host(loss_v, acc);
            }
            if device_lr.is_none() {
                opt.step(&mut store, lr)?;
            }
            if memory {
                ema.update(&mut ema_store, &store)?;
                let mut t = Tape::inference();
                let xm = t.constant(x_all);
                let mut ctx = policy.ctx(&mut t, &mut ema_store, true);
                if let Some(c) = &env.comm {
                    ctx = ctx.with_comm(c.clone());
                }
                let zm = ema_net.project(&mut ctx, &xm)?;
                let zn = ops::normalize::l2_normalize_forward(zm.value())?;
                queue.push(&match &env.comm {
                    Some(c) => comm::gather_views_forward(c.as_ref(), &zn)?,
                    None => zn,
                })?;
            }
            pos.step += 1;
            if !std::mem::replace(&mut choices_taken, true) {
                step_choices = crate::ops::conv2d::choice_summary(env.device)?;
            }
            let n = match env.comm {
                Some(_) => pc.batch_size,
                None => b.images,
            };
            images += n;
            let ips = n as f64 / t0.elapsed().as_secs_f64();
            n_batches += 1;
            if pos.step % env.cfg.log_every == 0 || n_batches + skip == per_epoch {
                // Means over the steps since the last line (one read of the device sums).
                let steps = window.steps() as f64;
                if let Some((loss_v, acc)) = window.take_means()? {
                    // A non-finite loss anywhere in the interval makes its mean non-finite.
                    guard::check_loss(STAGE, pos.step - 1, epoch, loss_v, lr)?;
                    sum_loss += loss_v * steps;
                    sum_acc += acc * steps;
                    shown = loss_v;
                    let mut r = step_record(STAGE, epoch, pos.step, loss_v, lr, ips);
                    r["contrastive_acc"] = json!(acc);
                    env.run.log(r)?;
                }
            }
            progress.update(Report {
                epoch,
                step: pos.step,
                loss: shown,
                lr,
                images_per_s: ips,
            });
            (pos.queue_filled, pos.queue_next) = (queue.filled, queue.next);
            epochs.after_step(env, &store, &opt, &pos, || {
                state_extra(memory, &ema_store, &queue)
            })?;
        }
        last_loss = sum_loss / n_batches.max(1) as f64;
        last_acc = sum_acc / n_batches.max(1) as f64;
        (pos.queue_filled, pos.queue_next) = (queue.filled, queue.next);
        let extra = state_extra(memory, &ema_store, &queue)?;
        epochs.end_epoch(env, epoch, &store, &opt, &mut pos, extra)?;
        progress.finish();
        println!(
            "{STAGE} epoch {}/{}: loss {last_loss:.4}, contrastive acc {last_acc:.3}, {:.0} img/s",
            epoch + 1,
            pc.epochs,
            (n_batches * pc.batch_size) as f64 / t_epoch.elapsed().as_secs_f64()
        );
        if let Some(summary) = step_choices.take() {
            println!("{STAGE}: {summary} (the first step's convolutions)");
        }
        if let Some(m) = knn
            .as_ref()
            .filter(|_| (epoch + 1) % pc.knn_every == 0 || epoch + 1 == pc.epochs)
        {
            let acc = m.top1(env, &net, &mut store)?;
            env.run.log(
                json!({ "stage": STAGE, "epoch": epoch, "step": pos.step, "knn_top1": acc }),
            )?;
            println!(
                "{STAGE} epoch {}: kNN top-1 {:.2}% (k = 200, labelled images as memory)",
                epoch + 1,
                100.0 * acc
            );
            last_knn = Some(acc);
        }
    }
    let done = epochs.complete(&pos);
    epochs.finish();
    if done && env.run.is_writer() {
        model::save(&store, &meta, &env.path("pretrain.safetensors"))?;
    }
    let secs = started.elapsed().as_secs_f64();
    let summary = json!({
        "model": meta.model, "epochs": pos.epochs_done, "loss": last_loss, "contrastive_acc": last_acc,
        "images_per_s": images as f64 / secs.max(1e-9), "seconds": secs, "complete": done,
        "knn_top1": last_knn, "distributed": super::dist_run::summary(env),
    });
    if done {
        env.run.set_summary(STAGE, summary.clone())?;
    }
    Ok(StageResult {
        stage: STAGE,
        summary,
        top1: None,
        top5: None,
        complete: done,
    })
}

/// The step runner of `pretrain.cuda_graph` (off when the step is distributed, micro-batched
/// or has a memory queue: `on` is then an error naming the reason).
fn pretrain_graph(
    key: &str,
    env: &Env,
    replicas: bool,
    micro: Option<usize>,
    memory: bool,
) -> Result<GraphedStep<()>> {
    let mode = GraphMode::parse("pretrain.cuda_graph (--cuda-graph)", key)?;
    let why_not = if replicas || env.comm.is_some() {
        Some("data-parallel ranks")
    } else if micro.is_some() {
        Some("--micro-batch")
    } else if memory {
        Some("a memory queue (--queue-size)")
    } else {
        None
    };
    match (mode, why_not) {
        (GraphMode::On, Some(w)) => Err(Error::Config(format!(
            "--cuda-graph on captures the single-device step, not one with {w}"
        ))),
        (_, Some(_)) => GraphedStep::new(GraphMode::Off, env.device),
        (m, None) => GraphedStep::new(m, env.device),
    }
}

/// The state beyond parameters and LARS: the EMA network and the queue, when there is a memory.
fn state_extra(
    memory: bool,
    ema_store: &ParamStore,
    queue: &Queue,
) -> Result<Vec<(String, Tensor)>> {
    if !memory {
        return Ok(Vec::new());
    }
    let mut extra = state::prefixed(ema_store, "ema")?;
    extra.push((
        "queue".into(),
        Tensor::from_vec(queue.rows.clone(), &[queue.capacity, queue.dim])?,
    ));
    Ok(extra)
}

/// On a GPU, stops before the first step if the configured batch will not fit, saying what
/// would (two small probe steps; see `memory_plan`).
fn check_memory(env: &Env, net: &SimClrNet, store: &mut ParamStore) -> Result<()> {
    let pc = &env.cfg.pretrain;
    let (size, c, policy) = (env.image_size, env.channels(), env.activations());
    let per_batch_row = memory_plan::contrastive_batch_row_bytes(size, c, pc.proj_dim);
    let plan = memory_plan::probe(
        store,
        env.device,
        pc.batch_size,
        2,
        per_batch_row,
        |s, rows| {
            let mut rng = crate::Rng::new(99);
            let x = Tensor::randn(&[rows, size, size, c], 1.0, crate::DType::F32, &mut rng)?
                .to_device(env.device)?;
            ContrastiveStep::new(pc.temperature, policy)
                .run(net, s, &x)
                .map(|_| ())
        },
    )?;
    let what = format!("pretraining {} at batch {}", env.cfg.model, pc.batch_size);
    let step = memory_plan::StepShape {
        what: &what,
        rows: 2 * pc.batch_size,
        micro: pc.micro_batch.map(|m| 2 * m),
        rows_per_image: 2,
    };
    memory_plan::check_fits(
        &plan,
        &step,
        &memory_plan::Budget::for_device(env.device, env.cfg.memory_limit)?,
    )?;
    Ok(())
}
