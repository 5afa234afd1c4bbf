//! The whole SimCLRv2 pretraining step as `simclr pretrain` runs it: two views stacked into one
//! batch, encoder + projection head (`SimClrNet::project`), L2 normalisation, NT-Xent, backward
//! through the tape, one LARS step. Random images; the data pipeline is not timed.
//!
//! GPU: r50_1x_sk1 at 224 px, 256 images (512 views), and r152_3x_sk1, 16 images; CPU:
//! r18_0.25x_sk1 at 32 px, 32 images. `SIMCLR_BENCH_STEP_BATCH=<images>` overrides the GPU
//! batches. A batch that does not fit in GPU memory is halved until it does, and the case
//! records the batch it ran (the PyTorch script then uses the same).
//! `SIMCLR_CONV_ALGORITHMS=deterministic|fastest` is `--conv-algorithms` (default
//! deterministic); the case records it (PyTorch's side runs cuDNN's default, nondeterministic
//! algorithms allowed, unless `kernels.py --cudnn-deterministic`).

mod common;

use common::{data, run_case, Case, Work};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use simclr::nn::ActivationPolicy;
use simclr::ops::conv2d::{use_conv_algorithms, ConvAlgorithms};
use simclr::optim::Lars;
use simclr::params::ParamStore;
use simclr::train::contrastive_step::ContrastiveStep;
use simclr::train::model::SimClrNet;
use simclr::{DType, Device, Result, Tensor};

const TAU: f64 = 0.1;
const LR: f64 = 0.3;

/// (model, image size, images per step) per device.
fn cases(device: Device) -> Vec<(&'static str, usize, usize)> {
    let batch = |default: usize| {
        std::env::var("SIMCLR_BENCH_STEP_BATCH")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    match device {
        Device::Cpu => vec![("r18_0.25x_sk1", 32, 32)],
        Device::Cuda(_) => vec![
            ("r50_1x_sk1", 224, batch(256)),
            ("r152_3x_sk1", 224, batch(16)),
        ],
    }
}

struct Step {
    net: SimClrNet,
    store: ParamStore,
    opt: Lars,
    /// Both views of every image, stacked: [2B, S, S, 3].
    x: Tensor,
}

fn setup(model: &str, size: usize, device: Device) -> Result<Step> {
    let mut store = ParamStore::new(DType::F32, 0);
    let net = SimClrNet::new(&mut store, data::simclr_meta(model, size))?;
    store.to(device, DType::F32)?;
    Ok(Step {
        net,
        store,
        opt: simclr::train::common::lars(1e-6),
        x: Tensor::zeros(&[0], DType::F32, Device::Cpu)?,
    })
}

/// Random images for both views of `images` images: [2B, S, S, 3].
fn images_for(images: usize, size: usize, device: Device) -> Result<Tensor> {
    data::uniform(&[2 * images, size, size, 3], 41, device, DType::F32)
}

/// Mixed precision on the GPU (bf16 activations, fp32 master weights), as the trainer's
/// default `--precision auto` runs it and as the PyTorch baseline's AMP does; f32 on the CPU.
fn policy(device: Device) -> ActivationPolicy {
    ActivationPolicy {
        compute: matches!(device, Device::Cuda(_)).then_some(DType::BF16),
        recompute: false,
    }
}

fn step(s: &mut Step) -> Result<()> {
    let device = s.x.device();
    ContrastiveStep::new(TAU, policy(device)).run(&s.net, &mut s.store, &s.x)?;
    s.opt.step(&mut s.store, LR)
}

/// Tries `images`, halving on failure (out of memory) down to 2 images; the model is built once.
fn fitting(model: &str, size: usize, images: usize, device: Device) -> Result<(usize, Step)> {
    let mut s = setup(model, size, device)?;
    let mut b = images;
    loop {
        let tried = images_for(b, size, device).and_then(|x| {
            s.x = x;
            step(&mut s)?;
            common::sync(device)
        });
        match tried {
            Ok(()) => return Ok((b, s)),
            Err(e) if b > 2 && device != Device::Cpu => {
                println!(
                    "step {model} with {b} images failed ({e}); trying {}",
                    b / 2
                );
                b /= 2;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The convolution policy `SIMCLR_CONV_ALGORITHMS` asks for (a bad value stops the bench).
fn conv_algorithms() -> ConvAlgorithms {
    let Ok(v) = std::env::var("SIMCLR_CONV_ALGORITHMS") else {
        return ConvAlgorithms::default();
    };
    ConvAlgorithms::parse("SIMCLR_CONV_ALGORITHMS", &v).unwrap_or_else(|e| panic!("{e}"))
}

fn bench(c: &mut Criterion) {
    let algorithms = conv_algorithms();
    for device in common::devices("step") {
        if let Err(e) = use_conv_algorithms(algorithms, device, "SIMCLR_CONV_ALGORITHMS") {
            println!("step-{}: skipped: {e}", common::device_name(device));
            continue;
        }
        let group_name = format!("step-{}", common::device_name(device));
        let mut group = c.benchmark_group(&group_name);
        for (model, size, images) in cases(device) {
            let probe = format!("{group_name}/step/{model} {size}px");
            if !common::selected(&probe) {
                continue;
            }
            let (images, state) = match fitting(model, size, images, device) {
                Ok(v) => v,
                Err(e) => {
                    println!("{probe}: skipped: {e}");
                    continue;
                }
            };
            // Training ≈ 3x the forward's 2 FLOP per MAC; every view goes through the network.
            let macs = data::macs_per_image(model, size).unwrap_or(f64::NAN);
            let views = 2 * images;
            // Sizes of the trainable tensors: the PyTorch script checks its model against them.
            let st = &state.store;
            let mut numels: Vec<usize> = st
                .ids()
                .filter(|&id| st.is_trainable(id))
                .map(|id| st.entry(id).shape.iter().product())
                .collect();
            numels.sort_unstable();
            let case = Case {
                group: group_name.clone(),
                function: "step",
                param: format!("{model} {size}px {images}x2"),
                device,
                dtype: policy(device).compute.unwrap_or(DType::F32),
                work: Work {
                    flops: 6.0 * macs * views as f64,
                    bytes: 0.0,
                },
                spec: json!({"kernel": "step", "model": model, "image_size": size,
                "images": images, "views": 2, "tau": TAU, "lr": LR, "proj_layers": 3,
                "proj_dim": 128, "params": st.num_trainable(), "numels": numels,
                "conv_algorithms": algorithms.name(),
                "precision": match device {
                    Device::Cpu => "f32 weights and activations",
                    Device::Cuda(_) => "bf16 activations, fp32 master weights",
                }}),
            };
            let mut state = Some(state);
            run_case(
                &mut group,
                case,
                || Ok(state.take().expect("set up once")),
                step,
            );
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
