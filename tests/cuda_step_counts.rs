//! What a steady-state pretraining step sends across the host/device boundary, counted exactly
//! by the driver floor on the (emulated) device: the images go up once (from pinned memory),
//! nothing comes back and the host never waits, with the loss and accuracy summed on the
//! device (the loss window pretraining reads once per log line); they are read afterwards.
//! One test in this binary, so no other test's traffic mixes into the global counters.
#![cfg(feature = "cuda")]

#[path = "cuda_common.rs"]
mod common;
use common::gpu;
#[path = "support/meta.rs"]
mod meta;
use meta::pretrain_meta;

use simclr::cuda::driver::counters;
use simclr::cuda::staging::PinnedUploader;
use simclr::nn::ActivationPolicy;
use simclr::params::ParamStore;
use simclr::train::common::lars;
use simclr::train::contrastive_step::ContrastiveStep;
use simclr::train::loss_window::LossWindow;
use simclr::train::model::SimClrNet;
use simclr::{DType, Device, Rng, Tensor};

#[test]
fn steady_state_step_uploads_once_and_never_waits() {
    let Some(dev) = gpu() else { return };
    let Device::Cuda(ordinal) = dev else {
        unreachable!("gpu() names a CUDA device")
    };
    for compute in [None, Some(DType::BF16)] {
        let policy = ActivationPolicy {
            compute,
            recompute: false,
        };
        let mut store = ParamStore::new(DType::F32, 5);
        let net = SimClrNet::new(&mut store, pretrain_meta("r18_0.25x_sk1")).unwrap();
        store.to(dev, DType::F32).unwrap();
        let mut opt = lars(1e-6);
        let mut up = PinnedUploader::new();
        let mut rng = Rng::new(9);
        let mut stats = Vec::new();
        let mut window = LossWindow::new();
        for step in 0..4 {
            // A fresh batch every step, as the loader gives.
            let x = Tensor::randn(&[8, 16, 16, 3], 1.0, DType::F32, &mut rng).unwrap();
            let before = counters();
            let xd = up.upload(&x, ordinal).unwrap();
            let s = ContrastiveStep::new(0.2, policy).run(&net, &mut store, &xd);
            window.add(s.as_ref().unwrap()).unwrap();
            opt.step(&mut store, 0.1).unwrap();
            let c = counters().since(&before);
            stats.push(s.unwrap());
            // Step 0 builds the optimizer's resident table (an upload and a wait).
            if step >= 1 {
                let what = format!("{compute:?} step {step}: {c:?}");
                assert_eq!(c.uploads, 1, "{what}");
                assert_eq!(c.downloads, 0, "{what}");
                assert_eq!(c.synchronizations, 0, "{what}");
                assert!(c.launches > 0, "{what}");
            }
        }
        // The figures are there when read (a read waits for them); the window's means are
        // theirs (summed in f32 on the device).
        let (mut sl, mut sa) = (0.0, 0.0);
        for s in &stats {
            let (loss, acc) = s.read().unwrap();
            assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
            assert!((0.0..=1.0).contains(&acc), "accuracy {acc}");
            sl += loss / stats.len() as f64;
            sa += acc / stats.len() as f64;
        }
        let before = counters();
        let (ml, ma) = window.take_means().unwrap().unwrap();
        let c = counters().since(&before);
        assert!(
            (ml - sl).abs() <= 1e-5 * sl.abs(),
            "window loss {ml} vs {sl}"
        );
        assert!((ma - sa).abs() <= 1e-6, "window accuracy {ma} vs {sa}");
        // One read per log line: the two sums.
        assert_eq!(c.downloads, 2, "{c:?}");
        assert_eq!(window.take_means().unwrap(), None);
    }
}
