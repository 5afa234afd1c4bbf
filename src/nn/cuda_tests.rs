//! Whole-model parity: a small SK-ResNet (ResNet-D stem, one SK bottleneck block per stage)
//! with a classifier runs forward, backward and one SGD step on the CPU and on the GPU from the
//! same f32 weights and inputs; logits, loss, every parameter gradient and every updated weight
//! and BN running statistic must agree. Without a usable GPU the test prints `skipped: <reason>`.

use crate::autograd::Tape;
use crate::nn::{Ctx, Linear, ResNet, ResNetConfig};
use crate::ops;
use crate::optim::Sgd;
use crate::params::ParamStore;
use crate::testing::device::device_test;
use crate::testing::{assert_close, fresh_seed, tolerance};
use crate::{DType, Device, Rng, Tensor};

fn config() -> ResNetConfig {
    crate::testing::tiny_sk_config(false)
}

/// One training step; returns the logits and loss, leaving gradients and new weights in `store`.
fn step(
    store: &mut ParamStore,
    net: &ResNet,
    fc: &Linear,
    x: &Tensor,
    labels: &[usize],
) -> (Tensor, Tensor) {
    let mut tape = Tape::new();
    let xv = tape.constant(x.clone());
    let mut ctx = Ctx::new(&mut tape, store, true);
    let h = net.forward(&mut ctx, &xv).unwrap();
    let logits = fc.forward(&mut ctx, &h).unwrap();
    let loss = ops::cross_entropy(&mut tape, &logits, labels).unwrap();
    let (lv, ll) = (logits.value().clone(), loss.value().clone());
    tape.backward(&loss, store).unwrap();
    (lv, ll)
}

/// The same model and data twice: parameters on the CPU and on the GPU, from one seed.
struct Pair {
    cpu: ParamStore,
    gpu: ParamStore,
    net: ResNet,
    fc: Linear,
    x: Tensor,
    labels: Vec<usize>,
}

fn pair(seed: u64, dev: Device) -> Pair {
    let build = |store: &mut ParamStore| {
        let net = ResNet::new(store, "encoder", &config()).unwrap();
        let fc = Linear::new(store, "classifier", config().out_dim(), 5, true).unwrap();
        (net, fc)
    };
    let (mut cpu, mut gpu) = (
        ParamStore::new(DType::F32, seed),
        ParamStore::new(DType::F32, seed),
    );
    let (net, fc) = build(&mut cpu);
    build(&mut gpu);
    gpu.to(dev, DType::F32).unwrap();
    let x = Tensor::randn(&[6, 16, 16, 3], 1.0, DType::F32, &mut Rng::new(seed)).unwrap();
    let labels = (0..6).map(|i| i % 5).collect();
    Pair {
        cpu,
        gpu,
        net,
        fc,
        x,
        labels,
    }
}

fn small_sk_resnet_step_matches_the_cpu(dev: Device) {
    let seed = fresh_seed("model parity");
    let Pair {
        mut cpu,
        gpu: mut gpu_store,
        net,
        fc,
        x,
        labels,
    } = pair(seed, dev);
    let (l_cpu, loss_cpu) = step(&mut cpu, &net, &fc, &x, &labels);
    let (l_gpu, loss_gpu) = step(
        &mut gpu_store,
        &net,
        &fc,
        &x.to_device(dev).unwrap(),
        &labels,
    );
    // f32 on both sides; the longest reduction is a BN statistic or a 3x3x128 receptive field
    // (≤ 1152 terms) and the longest path has 40 layers, as in tests/pytorch_fixtures.rs.
    let tol = tolerance(DType::F32, 1152, 40);
    let host = |t: &Tensor| t.to_device(Device::Cpu).unwrap();
    assert_close("logits", &host(&l_gpu), &l_cpu, tol);
    assert_close("loss", &host(&loss_gpu), &loss_cpu, tol);
    for id in cpu.ids() {
        if let Some(g) = cpu.grad(id) {
            assert_close(
                &format!("grad {}", cpu.name(id)),
                &host(gpu_store.grad(id).unwrap()),
                g,
                tol,
            );
        }
    }
    let mut sgd = (Sgd::new(0.1, 0.9, 1e-4), Sgd::new(0.1, 0.9, 1e-4));
    sgd.0.step(&mut cpu).unwrap();
    sgd.1.step(&mut gpu_store).unwrap();
    for id in cpu.ids() {
        let what = format!("updated {}", cpu.name(id));
        assert_close(
            &what,
            &host(gpu_store.value(id).unwrap()),
            cpu.value(id).unwrap(),
            tol,
        );
    }
}
device_test!(small_sk_resnet_step_matches_the_cpu);

/// Mixed precision: the GPU step with bf16 activations and fp32 master weights against the CPU
/// in f32. Same loss and gradients within bf16's tolerance; every gradient reaches the master
/// weights in f32.
fn bf16_activations_with_f32_master_weights_match_the_cpu(dev: Device) {
    let seed = fresh_seed("bf16 model parity");
    let Pair {
        mut cpu,
        gpu: mut gpu_store,
        net,
        fc,
        x,
        labels,
    } = pair(seed, dev);
    let (_, loss_cpu) = step(&mut cpu, &net, &fc, &x, &labels);

    let mut tape = Tape::new();
    let xv = tape.constant(x.to_device(dev).unwrap());
    let mut ctx = Ctx::new(&mut tape, &mut gpu_store, true).with_compute(Some(DType::BF16));
    let h = net.forward(&mut ctx, &xv).unwrap();
    assert_eq!(h.value().dtype(), DType::BF16, "activations run in bf16");
    let logits = fc.forward(&mut ctx, &h).unwrap();
    let logits = ctx.to_param_dtype(&logits).unwrap();
    let loss = ops::cross_entropy(&mut tape, &logits, &labels).unwrap();
    let loss_gpu = loss.value().to_device(Device::Cpu).unwrap();
    tape.backward(&loss, &mut gpu_store).unwrap();

    let tol = tolerance(DType::BF16, 1152, 40);
    assert_close("loss", &loss_gpu, &loss_cpu, tol);
    for id in cpu.ids() {
        if let Some(g) = cpu.grad(id) {
            let got = gpu_store.grad(id).unwrap();
            assert_eq!(got.dtype(), DType::F32, "{}: master gradient", cpu.name(id));
            assert_close(
                &format!("grad {}", cpu.name(id)),
                &got.to_device(Device::Cpu).unwrap(),
                g,
                tol,
            );
        }
    }
}
device_test!(bf16_activations_with_f32_master_weights_match_the_cpu);
