//! `simclr bench`: times training steps of an architecture on random images and reports the
//! step time, the memory it peaked at, and the model's FLOP rate.
//!
//! Before the first step, the memory plan (`train::memory_plan`) runs two small probe steps,
//! predicts the peak of the requested configuration, and stops with a message saying what would
//! fit if it does not. After the timed steps it prints the measured peak beside the prediction;
//! with `--profile`, one more step runs under the profiler and its per-phase, per-op and
//! per-layer table is printed.

use crate::nn::{ActivationPolicy, Linear, ResNet, ResNetConfig};
use crate::params::ParamStore;
use crate::profile::{self, Phase, Session, Table};
use crate::train::common::lars;
use crate::train::contrastive_step::ContrastiveStep;
use crate::train::graph_step::GraphedStep;
use crate::train::memory_plan::{self, Budget, MemoryPlan, StepShape};
use crate::train::model::{ModelMeta, SimClrNet};
use crate::train::upload::BatchUploader;
use crate::{ops, DType, Device, Error, Result, Rng, Tensor};
use std::time::Instant;

mod args;
mod device_traffic;
#[cfg(feature = "cuda")]
mod end_to_end;
mod input;
mod kernel_bytes;

pub use args::{BenchArgs, BenchTask};

/// Dense bf16 tensor-core rate measured on the lent H200 (an 8192³ GEMM through PyTorch,
/// PERFORMANCE.md), for the FLOP-rate lines.
const H200_BF16_MEASURED_TFLOPS: f64 = 790.0;
const GIB: f64 = (1u64 << 30) as f64;

/// The model and what one step of it does, for either task.
struct Bench {
    store: ParamStore,
    kind: Kind,
    rows_per_image: usize,
    /// Forward multiply-accumulates per row of the encoder.
    macs_per_row: f64,
    policy: ActivationPolicy,
}

enum Kind {
    Pretrain(Box<SimClrNet>),
    Supervised(Box<ResNet>, Box<Linear>),
}

const TAU: f64 = 0.1;
const CLASSES: usize = 10;

impl Bench {
    fn new(a: &BenchArgs, device: Device) -> Result<Self> {
        let cfg = ResNetConfig::parse(a.model())?.for_image_size(a.size());
        let macs_per_row = ResNet::new(&mut ParamStore::meta(), "encoder", &cfg)?
            .describe(a.size())?
            .total_macs() as f64;
        let mut store = ParamStore::new(DType::F32, 0);
        let (kind, rows_per_image) = match a.task {
            BenchTask::Pretrain => {
                let meta = ModelMeta {
                    stage: "pretrain".into(),
                    model: a.model().to_string(),
                    image_size: a.size(),
                    in_channels: 3,
                    proj_layers: 3,
                    proj_dim: 128,
                    proj_layer: 0,
                    num_classes: CLASSES,
                    stem_pool_padding: crate::nn::StemPoolPadding::Symmetric,
                };
                let net = SimClrNet::new(&mut store, meta)?;
                (Kind::Pretrain(Box::new(net)), 2)
            }
            BenchTask::Supervised => {
                let encoder = ResNet::new(&mut store, "encoder", &cfg)?;
                let fc = Linear::new(&mut store, "classifier", cfg.out_dim(), CLASSES, true)?;
                (Kind::Supervised(Box::new(encoder), Box::new(fc)), 1)
            }
            BenchTask::Input => return Err(Error::Config("--task input times no model".into())),
        };
        store.to(device, DType::F32)?;
        Ok(Bench {
            store,
            kind,
            rows_per_image,
            macs_per_row,
            policy: policy(a, device)?,
        })
    }

    /// The memory plan: two probe steps that leave the model as it was.
    fn plan(&mut self, a: &BenchArgs, device: Device) -> Result<MemoryPlan> {
        let per_batch_row = match &self.kind {
            Kind::Pretrain(net) => {
                memory_plan::contrastive_batch_row_bytes(a.size(), 3, net.meta.proj_dim)
            }
            Kind::Supervised(..) => 0.0,
        };
        let (kind, policy) = (&self.kind, self.policy);
        memory_plan::probe(
            &mut self.store,
            device,
            a.batch(),
            self.rows_per_image,
            per_batch_row,
            |store, rows| {
                let x = random_images(rows, a.size(), device, 99)?;
                // The plain step: a micro-batch's second pass is exactly this at fewer rows.
                forward_backward(kind, store, policy, &x, None).map(|_| ())
            },
        )
    }
}

/// Forward + backward over the rows of `x`; the loss, left on the device (read after the run).
fn forward_backward(
    kind: &Kind,
    store: &mut ParamStore,
    policy: ActivationPolicy,
    x: &Tensor,
    micro: Option<usize>,
) -> Result<Tensor> {
    match kind {
        Kind::Pretrain(net) => {
            let step = ContrastiveStep::new(TAU, policy).micro(micro);
            Ok(step.run(net, store, x)?.loss)
        }
        Kind::Supervised(enc, fc) => {
            let n = x.shape()[0];
            let labels: Vec<usize> = (0..n).map(|i| i % CLASSES).collect();
            let mut tape = policy.tape();
            let forward = profile::phase(Phase::Forward);
            let xv = tape.constant(x.clone());
            let mut ctx = policy.ctx(&mut tape, store, true);
            let h = enc.forward(&mut ctx, &xv)?;
            let logits = fc.forward(&mut ctx, &h)?;
            let logits = ctx.to_param_dtype(&logits)?;
            let loss = ops::cross_entropy(&mut tape, &logits, &labels)?;
            let v = loss.value().clone();
            drop(forward);
            tape.backward(&loss, store)?;
            Ok(v)
        }
    }
}

fn policy(a: &BenchArgs, device: Device) -> Result<ActivationPolicy> {
    let bf16 = match (a.precision.as_str(), device) {
        ("bf16", Device::Cpu) => {
            return Err(Error::Config(
                "--precision bf16 needs the CUDA backend (--device cuda)".into(),
            ))
        }
        ("bf16", _) | ("auto", Device::Cuda(_)) => true,
        ("f32", _) | ("auto", Device::Cpu) => false,
        (p, _) => {
            return Err(Error::Config(format!(
                "--precision must be auto, f32 or bf16, got '{p}'"
            )))
        }
    };
    Ok(ActivationPolicy {
        compute: bf16.then_some(DType::BF16),
        recompute: a.recompute,
    })
}

fn random_images(rows: usize, size: usize, device: Device, seed: u64) -> Result<Tensor> {
    let mut rng = Rng::new(seed);
    Tensor::randn(&[rows, size, size, 3], 1.0, DType::F32, &mut rng)?.to_device(device)
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let device = args.device.resolve()?;
    crate::ops::conv2d::use_conv_algorithms(args.conv_algorithms, device, "--conv-algorithms")?;
    match args.task {
        BenchTask::Input => input::run(args, device),
        _ => run_steps(args, device).map(|_| ()),
    }
}

/// Times training steps on random images on `device` (`args.device` resolved); returns the
/// median images/s.
fn run_steps(args: &BenchArgs, device: Device) -> Result<f64> {
    let a = &args.resolved(device);
    if a.batch() == 0 || a.steps() == 0 {
        return Err(Error::Config(
            "--batch-size and --steps must be at least 1".into(),
        ));
    }
    if a.micro_batch.is_some() && a.task != BenchTask::Pretrain {
        return Err(Error::Config(
            "--micro-batch applies to the contrastive (pretrain) task only".into(),
        ));
    }
    let mut b = Bench::new(a, device)?;
    let micro = a.micro_rows(b.rows_per_image);
    let rows = a.batch() * b.rows_per_image;
    let what = format!(
        "{:?} step of {} at batch {} ({} rows of {} px){}",
        a.task,
        a.model(),
        a.batch(),
        rows,
        a.size(),
        a.micro_batch
            .map(|m| format!(" in micro-batches of {m} images"))
            .unwrap_or_default()
    )
    .to_lowercase();

    let predicted = if a.no_plan {
        None
    } else {
        let plan = b.plan(a, device)?;
        let budget = Budget::for_device(device, a.memory_limit)?;
        let shape = StepShape {
            what: &what,
            rows,
            micro,
            rows_per_image: b.rows_per_image,
        };
        let need = memory_plan::check_fits(&plan, &shape, &budget)?;
        println!(
            "memory plan: {:.3} GiB predicted ({:.3} GiB fixed + {:.2} MiB per row; probes {:?}); \
             {} allows {:.2} GiB",
            need / GIB,
            plan.fixed / GIB,
            plan.per_row / (1 << 20) as f64,
            plan.probes,
            budget.source,
            budget.bytes / GIB
        );
        Some(need)
    };

    // The summary of cuDNN's choices covers the step's convolutions, not the plan's probes.
    crate::ops::conv2d::mark_choices(device)?;
    // The batch goes up every step into one device buffer (what a captured step reads).
    let x_host = random_images(rows, a.size(), Device::Cpu, 1)?;
    let x = x_host.to_device(device)?;
    let mut up = BatchUploader::new();
    let mut graph = GraphedStep::<Tensor>::new(a.cuda_graph, device)?;
    // The graph is captured after its eager warm-up and pool-filling steps.
    let warmup = graph.warmup(a.warmup());
    let mut opt = lars(1e-6);
    let mut times = Vec::with_capacity(a.steps());
    let mut losses = Vec::with_capacity(warmup + a.steps());
    let mut peaks = Vec::with_capacity(warmup + a.steps());
    let mut traffic = None;
    // What cuDNN's choices cost in one step: the first, which runs every convolution eagerly.
    let mut first_step_choices = None;
    for i in 0..warmup + a.steps() {
        let mut measure = || -> Result<f64> {
            let t0 = Instant::now();
            let before = device_traffic::snapshot();
            kernel_bytes::mark();
            if device != Device::Cpu {
                up.put_into(&x_host, &x)?;
            }
            let loss = graph.step(&mut || {
                let loss = forward_backward(&b.kind, &mut b.store, b.policy, &x, micro)?;
                opt.step(&mut b.store, a.lr)?;
                Ok(loss)
            })?;
            traffic = device_traffic::since(before);
            // The step never waits for the device; the bench's timing does.
            crate::device_select::synchronize(device)?;
            // A replay rewrites the captured loss: read it now.
            losses.push(loss.item()?);
            Ok(t0.elapsed().as_secs_f64())
        };
        let mut secs = 0.0;
        let p = memory_plan::measure_peak(device, || {
            secs = measure()?;
            Ok(())
        })?;
        peaks.push(p);
        if i >= warmup {
            times.push(secs);
        }
        if i == 0 {
            first_step_choices = crate::ops::conv2d::choice_summary(device)?;
        }
    }
    let mut sorted = times.clone();
    sorted.sort_by(|p, q| p.total_cmp(q));
    let median = sorted[sorted.len() / 2];
    let images_per_s = a.batch() as f64 / median;
    // Training ≈ 3x the forward's FLOPs (forward, input gradient, weight gradient); gradient
    // caching runs one more forward.
    let passes = if a.micro_batch.is_some() { 4.0 } else { 3.0 };
    let tflops = 2.0 * b.macs_per_row * rows as f64 * passes / median / 1e12;
    println!(
        "{} on {device}: median {:.1} ms/step ({:.1} images/s) over {} steps, min {:.1} ms",
        what,
        median * 1e3,
        images_per_s,
        times.len(),
        sorted[0] * 1e3
    );
    if let Some(why) = &graph.fallback {
        println!("cuda graph: off ({why})");
    }
    if let Some(summary) = first_step_choices {
        println!("{summary} (the first step's convolutions)");
    }
    if a.profile {
        if let Some(t) = &traffic {
            println!("{}", device_traffic::describe(t, device));
        }
        println!("{}", graph_line(&graph));
        println!("{}", kernel_bytes::describe(device));
        let session = Session::start(device)?;
        forward_backward(&b.kind, &mut b.store, b.policy, &x, micro)?;
        opt.step(&mut b.store, a.lr)?;
        let table = Table::new(&session.finish()?);
        println!("\nprofile of one more step\n{table}");
        // Convolution FLOPs: each forward pass 2·MACs, backward 4·MACs (input and weight
        // gradients; the first conv's input gradient, not needed, is counted too).
        let conv_ns: u64 = table
            .ops
            .iter()
            .filter(|r| r.name == "conv2d" || r.name == "conv2d backward")
            .map(|r| r.ns)
            .sum();
        let forwards = if a.micro_batch.is_some() { 2.0 } else { 1.0 };
        let flops = (2.0 * forwards + 4.0) * b.macs_per_row * rows as f64;
        let secs = conv_ns as f64 * 1e-9;
        let line = format!(
            "convolutions: {:.1} ms of the profiled step, {:.2} TFLOP/s",
            secs * 1e3,
            flops / secs.max(1e-12) / 1e12
        );
        match device {
            Device::Cuda(_) => println!(
                "{line} = {:.1}% of the H200's measured dense bf16 rate",
                100.0 * flops / secs.max(1e-12) / 1e12 / H200_BF16_MEASURED_TFLOPS
            ),
            Device::Cpu => println!("{line}"),
        }
    }
    let losses_txt: Vec<String> = losses.iter().map(|l| format!("{l:.4}")).collect();
    println!("loss per step (warm-up included): {}", losses_txt.join(" "));
    println!("{}", peak_line(device, &peaks, predicted));
    let rate = format!(
        "encoder FLOP rate: {tflops:.2} TFLOP/s ({:.0} GFLOP per step)",
        2.0 * b.macs_per_row * rows as f64 * passes / 1e9
    );
    match device {
        Device::Cuda(_) => println!(
            "{rate} = {:.1}% of the H200's measured dense bf16 rate ({H200_BF16_MEASURED_TFLOPS} TFLOP/s)",
            100.0 * tflops / H200_BF16_MEASURED_TFLOPS
        ),
        Device::Cpu => println!("{rate}"),
    }
    Ok(images_per_s)
}

/// The measured peak beside the plan's prediction. On a GPU the first step chooses cuDNN's
/// algorithms, and a search's workspace (the largest any algorithm asks for) is freed after it: the steps after the first
/// are the steady state the plan predicts, and the first is shown apart.
fn peak_line(device: Device, peaks: &[usize], predicted: Option<f64>) -> String {
    let gib = |b: usize| b as f64 / GIB;
    let predicted = predicted
        .map(|p| format!(", {:.3} GiB predicted", p / GIB))
        .unwrap_or_default();
    let max = |p: &[usize]| gib(p.iter().copied().max().unwrap_or(0));
    match peaks.split_first() {
        Some((&first, rest)) if device != Device::Cpu && !rest.is_empty() => format!(
            "peak memory: {:.3} GiB measured{predicted} (the steps after the first; the first, \
             which chose cuDNN's algorithms: {:.3} GiB)",
            max(rest),
            gib(first)
        ),
        _ => format!("peak memory: {:.3} GiB measured{predicted}", max(peaks)),
    }
}

/// What the steady-state step ran as: a replayed graph (with its node count where known) or
/// eager launches.
fn graph_line<R: Clone>(g: &GraphedStep<R>) -> String {
    match g.graph() {
        Some(graph) => match graph_nodes(graph) {
            Some(n) => format!(
                "cuda graph: on; each step is one graph launch replaying {n} nodes (kernels, \
                 library calls, memsets and device copies)"
            ),
            None => "cuda graph: on; each step is one graph launch".to_string(),
        },
        None => "cuda graph: off; the step runs eagerly".to_string(),
    }
}

#[cfg(feature = "cuda")]
fn graph_nodes(g: &crate::train::graph_step::CudaGraph) -> Option<usize> {
    g.nodes()
}

#[cfg(not(feature = "cuda"))]
fn graph_nodes(g: &crate::train::graph_step::CudaGraph) -> Option<usize> {
    match *g {}
}
