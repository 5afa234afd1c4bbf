//! `simclr bench`: times training steps (forward + backward + SGD update) of an architecture on
//! random images, after warm-up steps, and prints ms/step and images/s; with `--profile`, one
//! more step under the profiler and its per-phase, per-op and per-layer table.

use crate::autograd::Tape;
use crate::nn::{Ctx, Linear, ResNet, ResNetConfig};
use crate::optim::Sgd;
use crate::params::ParamStore;
use crate::profile::{self, Phase, Session, Table};
use crate::{ops, DType, DeviceRequest, Error, Result, Rng, Tensor};
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
    /// After the timed steps, profile one more and print its time per phase, op and layer
    /// (on a GPU the device is synchronised at every range boundary, which slows that step).
    #[arg(long)]
    pub profile: bool,
}

/// What one training step works on.
struct Bench {
    net: ResNet,
    fc: Linear,
    store: ParamStore,
    sgd: Sgd,
    x: Tensor,
    labels: Vec<usize>,
}

impl Bench {
    /// Forward, loss, backward, SGD update.
    fn step(&mut self) -> Result<()> {
        let mut tape = Tape::new();
        let loss = {
            let _forward = profile::phase(Phase::Forward);
            let xv = tape.constant(self.x.clone());
            let mut ctx = Ctx::new(&mut tape, &mut self.store, true);
            let h = self.net.forward(&mut ctx, &xv)?;
            let logits = self.fc.forward(&mut ctx, &h)?;
            let loss = ops::cross_entropy(&mut tape, &logits, &self.labels)?;
            loss.value().item()?; // synchronises a GPU
            loss
        };
        tape.backward(&loss, &mut self.store)?;
        let _optimizer = profile::phase(Phase::Optimizer);
        self.sgd.step(&mut self.store)
    }
}

pub fn run(a: &BenchArgs) -> Result<()> {
    if a.steps == 0 {
        return Err(Error::Config("bench needs --steps of at least 1".into()));
    }
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
    let mut bench = Bench {
        net,
        fc,
        store,
        sgd: Sgd::new(0.01, 0.9, 0.0),
        x,
        labels,
    };
    let mut times = Vec::with_capacity(a.steps);
    for i in 0..a.warmup + a.steps {
        let t0 = Instant::now();
        bench.step()?;
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
    if a.profile {
        let session = Session::start(device)?;
        bench.step()?;
        let table = Table::new(&session.finish()?);
        println!("\nprofile of one more step\n{table}");
    }
    Ok(())
}
