//! `bench --task input --with-step` on a CUDA device: pretraining fed from the folder as a
//! training run feeds it with `--augment-on gpu` — the loader's workers decode (or, with
//! nvJPEG, only read) and draw, each step uploads its sources once, nvJPEG decodes the JPEGs
//! into them, and both views are augmented in one launch (`data::gpu_input`),
//! the views are copied into the one input buffer a replayed step reads, then the step
//! (forward, backward, LARS; a CUDA graph unless `--cuda-graph off`) — timed end to end over
//! `--steps` after `--warmup`, beside the same step on random data measured just before.
//!
//! The target is 95% of the random-data rate; below it, the line names the short side: the
//! loader (its wall rate on this machine's workers, measured earlier in the run) or the GPU
//! input work the step now shares the device with.

use super::{forward_backward, BenchArgs, BenchTask};
use crate::data::gpu_input::GpuInput;
use crate::data::{AugmentConfig, Loader, SourceDecode};
use crate::train::common::lars;
use crate::train::graph_step::GraphedStep;
use crate::{Device, Error, Result, Tensor};
use std::time::Instant;

/// The fraction of the random-data rate training on the folder should reach.
pub const TARGET: f64 = 0.95;

/// Times pretraining on `loader`'s folder (see the module header); `step_rate` and
/// `loader_rate` are the random-data step's and the loader's images/s from the same run.
pub fn run(
    a: &BenchArgs,
    loader: &Loader,
    cfg: &AugmentConfig,
    ordinal: usize,
    decode: SourceDecode,
    step_rate: f64,
    loader_rate: f64,
) -> Result<()> {
    let dev = Device::Cuda(ordinal);
    let pa = BenchArgs {
        task: BenchTask::Pretrain,
        ..a.clone()
    };
    let mut b = super::Bench::new(&pa, dev)?;
    let micro = pa.micro_rows(b.rows_per_image);
    let dtype = b.policy.compute.unwrap_or(crate::DType::F32);
    let mut input = GpuInput::new(ordinal)?;
    let decoding = match decode {
        SourceDecode::Gpu => format!("JPEGs on the GPU (nvJPEG, {})", input.decode_jpegs()?),
        SourceDecode::Host => "JPEGs on the workers".to_string(),
    };
    let mut graph = GraphedStep::<Tensor>::new(a.cuda_graph, dev)?;
    let mut opt = lars(1e-6);
    let mut fixed: Option<Tensor> = None;
    let (mut epoch, mut batches) = (0u64, loader.raw_epoch(0, cfg, decode));
    // The graph is captured after its eager warm-up and pool-filling steps.
    let warmup = graph.warmup(a.warmup());
    let mut started = None;
    for step in 0..warmup + a.steps() {
        if step == warmup {
            crate::device_select::synchronize(dev)?;
            started = Some(Instant::now());
        }
        let raw = match batches.next() {
            Some(r) => r?,
            None => {
                epoch += 1;
                batches = loader.raw_epoch(epoch, cfg, decode);
                batches.next().ok_or_else(|| {
                    Error::Config("--task input: the folder holds no whole batch".into())
                })??
            }
        };
        let views = input.views(cfg, &raw, dtype)?;
        // One input address for the whole run, as training keeps it for the graph.
        let x = match &fixed {
            Some(x) if crate::cuda::overwrite(x, &views)? => x.clone(),
            _ => {
                graph.reset();
                fixed.insert(views).clone()
            }
        };
        graph.step(&mut || {
            let loss = forward_backward(&b.kind, &mut b.store, b.policy, &x, micro)?;
            opt.step(&mut b.store, a.lr)?;
            Ok(loss)
        })?;
    }
    crate::device_select::synchronize(dev)?;
    let secs = started.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let images_per_s = (a.steps() * a.batch()) as f64 / secs.max(1e-9);
    let fraction = images_per_s / step_rate.max(1e-9);
    let verdict = if fraction >= TARGET {
        "at target".to_string()
    } else if loader_rate < step_rate {
        format!(
            "below target: the loader ({loader_rate:.1} images/s on this machine's workers) \
             is slower than the step"
        )
    } else {
        format!(
            "below target: the loader keeps up ({loader_rate:.1} images/s); the GPU input \
             (upload, augmentation, copy) costs the step {:.1} ms",
            1e3 * a.batch() as f64 * (1.0 / images_per_s - 1.0 / step_rate)
        )
    };
    println!(
        "end to end on the folder ({}, --augment-on gpu, {decoding}, graph {}): \
         {images_per_s:.1} images/s over {} steps = {:.1}% of the step on random data \
         (target {:.0}%): {verdict}{}",
        crate::cuda::driver::mode().name(),
        if graph.replaying() { "replayed" } else { "off" },
        a.steps(),
        100.0 * fraction,
        100.0 * TARGET,
        super::input::jpeg_split(decode, &input)
    );
    Ok(())
}
