//! The pretraining step replayed as a CUDA graph: the same bits as the eager step, step after
//! step (loss, weights, BN running statistics, LARS velocities), in f32 and bf16, with a rate
//! that changes every step (the eager step passes it, the graph reads the device schedule);
//! each replayed step is one graph launch and one upload, with no other launch, copy, allocation or wait
//! (exact counts of the driver floor on the emulated device); a capture that would wait, read
//! back or allocate outside the graph pool is refused with an error naming the call.
//! One test in this binary, so no other test's traffic mixes into the global counters.
#![cfg(feature = "cuda")]

#[path = "cuda_common.rs"]
mod common;
use common::gpu;
#[path = "support/meta.rs"]
mod meta;
use meta::pretrain_meta;

use simclr::cuda::driver::counters;
use simclr::cuda::graph::{CudaGraph, GraphPool};
use simclr::cuda::staging::PinnedUploader;
use simclr::nn::ActivationPolicy;
use simclr::optim::cuda::LearningRate;
use simclr::optim::{DeviceLr, Lars};
use simclr::params::ParamStore;
use simclr::train::common::lars;
use simclr::train::contrastive_step::ContrastiveStep;
use simclr::train::graph_step::{GraphMode, GraphedStep, FILL_STEPS, WARM_STEPS};
use simclr::train::model::SimClrNet;
use simclr::train::step_stats::StepStats;
use simclr::{DType, Device, Rng, Tensor};

const STEPS: usize = 7;

/// A different rate at every step, as a warmup then decay gives.
fn rate(step: usize) -> f64 {
    0.3 * (step as f64 + 1.0) / (1.0 + (step as f64 * 0.7).powi(2))
}
const SHAPE: [usize; 4] = [8, 16, 16, 3];

/// Every tensor of the store (values and LARS state) as bits, by name.
fn bits(store: &ParamStore) -> Vec<(String, Vec<u64>)> {
    store
        .ids()
        .map(|id| {
            let v = store.value(id).unwrap().to_vec_f64().unwrap();
            (
                store.name(id).to_string(),
                v.iter().map(|x| x.to_bits()).collect(),
            )
        })
        .collect()
}

struct Run {
    store: ParamStore,
    net: SimClrNet,
    opt: Lars,
    up: PinnedUploader,
    x: Tensor,
}

fn run(dev: Device) -> Run {
    let mut store = ParamStore::new(DType::F32, 5);
    let net = SimClrNet::new(&mut store, pretrain_meta("r18_0.25x_sk1")).unwrap();
    store.to(dev, DType::F32).unwrap();
    let Device::Cuda(ordinal) = dev else {
        unreachable!()
    };
    let x = Tensor::zeros(&SHAPE, DType::F32, Device::Cpu).unwrap();
    let x = simclr::cuda::upload(&x, ordinal).unwrap();
    Run {
        store,
        net,
        opt: lars(1e-6),
        up: PinnedUploader::new(),
        x,
    }
}

/// One step at `lr`: a host value (eager) or the device schedule (graph).
fn one_step(r: &mut Run, policy: ActivationPolicy, lr: LearningRate) -> simclr::Result<StepStats> {
    let s = ContrastiveStep::new(0.2, policy).run(&r.net, &mut r.store, &r.x)?;
    match lr {
        LearningRate::Host(v) => r.opt.step(&mut r.store, v)?,
        LearningRate::Device(d) => r.opt.step_scheduled(&mut r.store, d)?,
    }
    Ok(s)
}

#[test]
fn replayed_step_matches_eager_bit_for_bit_with_one_launch_and_no_wait() {
    let Some(dev) = gpu() else { return };
    for compute in [None, Some(DType::BF16)] {
        let policy = ActivationPolicy {
            compute,
            recompute: false,
        };
        let mut eager = run(dev);
        let mut graphed = run(dev);
        let mut g = GraphedStep::<StepStats>::new(GraphMode::On, dev).unwrap();
        let rates: Vec<f64> = (0..STEPS).map(rate).collect();
        let schedule = DeviceLr::new(dev, &rates, 0).unwrap();
        let mut rng = Rng::new(9);
        for step in 0..STEPS {
            let batch = Tensor::randn(&SHAPE, 1.0, DType::F32, &mut rng).unwrap();
            eager.up.upload_into(&batch, &eager.x).unwrap();
            let want = one_step(&mut eager, policy, LearningRate::Host(rate(step)))
                .unwrap()
                .read()
                .unwrap();

            let before = counters();
            graphed.up.upload_into(&batch, &graphed.x).unwrap();
            let stats = g
                .step(&mut || one_step(&mut graphed, policy, LearningRate::Device(&schedule)))
                .unwrap();
            let c = counters().since(&before);
            let got = stats.read().unwrap();
            let what = format!("{compute:?} step {step}: {c:?}");
            assert_eq!(
                (got.0.to_bits(), got.1.to_bits()),
                (want.0.to_bits(), want.1.to_bits()),
                "{what}: loss and accuracy, graph {got:?} vs eager {want:?}"
            );
            if step > WARM_STEPS + FILL_STEPS {
                assert!(g.replaying(), "{what}");
                assert_eq!(c.graph_launches, 1, "{what}");
                assert_eq!(c.launches, 0, "{what}");
                assert_eq!(c.library_calls, 0, "{what}");
                assert_eq!(c.uploads, 1, "{what}");
                assert_eq!(c.downloads, 0, "{what}");
                assert_eq!(c.device_copies, 0, "{what}");
                assert_eq!(c.synchronizations, 0, "{what}");
                assert_eq!(c.allocations, 0, "{what}");
            }
        }
        let nodes = g.graph().and_then(|g| g.nodes()).unwrap();
        assert!(nodes > 50, "{compute:?}: the graph holds {nodes} nodes");
        let (e, r) = (bits(&eager.store), bits(&graphed.store));
        for ((name, a), (_, b)) in e.iter().zip(&r) {
            assert!(
                a == b,
                "{compute:?}: {name} differs between eager and graph"
            );
        }
    }
    refused_calls(dev);
}

/// Something run while capturing.
type Work<'a> = Box<dyn FnOnce() -> simclr::Result<()> + 'a>;

/// A capture that reads back, waits or allocates outside the graph pool fails naming the call.
fn refused_calls(dev: Device) {
    let Device::Cuda(ordinal) = dev else {
        unreachable!()
    };
    let g = simclr::cuda::gpu(ordinal).unwrap();
    let one = Tensor::full(&[1], 1.0, DType::F32, Device::Cpu).unwrap();
    let t = simclr::cuda::upload(&one, ordinal).unwrap();
    let cases: [(&str, Work); 3] = [
        ("cuMemcpyDtoHAsync", Box::new(|| t.item().map(|_| ()))),
        ("cuStreamSynchronize", Box::new(|| g.synchronize())),
        (
            "cuMemAllocAsync",
            Box::new(|| simclr::cuda::upload(&one, ordinal).map(|_| ())),
        ),
    ];
    for (call, f) in cases {
        let pool = GraphPool::new(&g);
        let e = CudaGraph::capture(&g, &pool, f).unwrap_err().to_string();
        assert!(e.contains(call) && e.contains("capture"), "{call}: {e}");
    }
    // The device works as before after a refused capture.
    assert_eq!(t.item().unwrap(), 1.0);
}
