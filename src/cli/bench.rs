//! `simclr bench`: times training steps (forward + backward + SGD update) of an architecture on
//! random images, after warm-up steps, and prints ms/step and images/s.

use crate::autograd::Tape;
use crate::nn::{Ctx, Linear, ResNet, ResNetConfig};
use crate::optim::Sgd;
use crate::params::ParamStore;
use crate::{ops, DType, DeviceRequest, Result, Rng, Tensor};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[arg(long, default_value = "r50_1x_sk1")]
    pub model: String,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 224)]
    pub image_size: usize,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    #[arg(long, default_value = "cpu")]
    pub device: DeviceRequest,
}

pub fn run(a: &BenchArgs) -> Result<()> {
    let device = a.device.resolve()?;
    let cfg = ResNetConfig::parse(&a.model)?.for_image_size(a.image_size);
    let mut store = ParamStore::new(DType::F32, 0);
    let net = ResNet::new(&mut store, "encoder", &cfg)?;
    let fc = Linear::new(&mut store, "classifier", cfg.out_dim(), 10, true)?;
    store.to(device, DType::F32)?;
    let mut rng = Rng::new(1);
    let x = Tensor::randn(
        &[a.batch_size, a.image_size, a.image_size, 3],
        1.0,
        DType::F32,
        &mut rng,
    )?
    .to_device(device)?;
    let labels: Vec<usize> = (0..a.batch_size).map(|i| i % 10).collect();
    let mut sgd = Sgd::new(0.01, 0.9, 0.0);
    let mut times = Vec::with_capacity(a.steps);
    for i in 0..a.warmup + a.steps {
        let t0 = Instant::now();
        let mut tape = Tape::new();
        let xv = tape.constant(x.clone());
        let mut ctx = Ctx::new(&mut tape, &mut store, true);
        let h = net.forward(&mut ctx, &xv)?;
        let logits = fc.forward(&mut ctx, &h)?;
        let loss = ops::cross_entropy(&mut tape, &logits, &labels)?;
        loss.value().item()?; // synchronises a GPU
        tape.backward(&loss, &mut store)?;
        sgd.step(&mut store)?;
        if i >= a.warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    times.sort_by(|p, q| p.total_cmp(q));
    let median = times[times.len() / 2];
    println!(
        "{} batch {} at {} px on {device}: median {:.1} ms/step ({:.1} images/s) over {} steps, min {:.1} ms",
        cfg.name(),
        a.batch_size,
        a.image_size,
        median * 1e3,
        a.batch_size as f64 / median,
        times.len(),
        times[0] * 1e3
    );
    Ok(())
}
