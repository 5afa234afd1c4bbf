//! What a steady-state pretraining step with `--augment-on gpu` sends across the host/device
//! boundary, counted exactly by the driver floor on the (emulated) device: the batch's u8
//! sources and its parameter table go up in one copy (4 images of 40x40 RGB: 19,200 pixel
//! bytes, plus 8 views x 88 table bytes padded to 768: 19,968 bytes), the augmentation is one
//! launch for both views, nothing comes back and the host never waits. One test in this
//! binary, so no other test's traffic mixes into the global counters.
#![cfg(feature = "cuda")]

#[path = "cuda_common.rs"]
mod common;
use common::gpu;
#[path = "support/meta.rs"]
mod meta;
use meta::pretrain_meta;

use simclr::cuda::driver::counters;
use simclr::data::dataset::ArrayDataset;
use simclr::data::gpu_input::GpuInput;
use simclr::data::{AugmentConfig, Interpolation, Loader, LoaderConfig, PretrainAugment};
use simclr::nn::ActivationPolicy;
use simclr::params::ParamStore;
use simclr::train::common::lars;
use simclr::train::contrastive_step::ContrastiveStep;
use simclr::train::model::SimClrNet;
use simclr::{DType, Device, Rng};
use std::sync::Arc;

const SIDE: usize = 40;
const BATCH: usize = 4;
/// 4 images x 40 x 40 x 3 bytes.
const PIXEL_BYTES: u64 = 19_200;
/// 8 AugView rows of 88 bytes, padded to 256.
const TABLE_BYTES: u64 = 768;

#[test]
fn gpu_input_step_uploads_once_launches_one_augmentation_and_never_waits() {
    let Some(dev) = gpu() else { return };
    let Device::Cuda(ordinal) = dev else {
        unreachable!("gpu() names a CUDA device")
    };
    let mut rng = Rng::new(11);
    let n = 3 * BATCH;
    let pixels: Vec<u8> = (0..n * SIDE * SIDE * 3)
        .map(|_| rng.below(256) as u8)
        .collect();
    let data = ArrayDataset::new(
        std::path::Path::new("generated"),
        (SIDE, SIDE, 3),
        pixels,
        (0..n).map(|i| i % 2).collect(),
        vec!["a".into(), "b".into()],
    )
    .unwrap();
    // Every stage on, so the one launch does all of them.
    let cfg = AugmentConfig {
        interpolation: Interpolation::Bilinear,
        color_p: 1.0,
        blur_p: 1.0,
        ..AugmentConfig::imagenet(16)
    };
    let loader = Loader::new(
        Arc::new(data),
        Arc::new(PretrainAugment::new(cfg.clone()).unwrap()),
        LoaderConfig {
            batch_size: BATCH,
            views: 2,
            seed: 3,
            workers: 1,
            prefetch: 2,
            drop_last: true,
            ..LoaderConfig::default()
        },
    )
    .unwrap();
    for compute in [None, Some(DType::BF16)] {
        let policy = ActivationPolicy {
            compute,
            recompute: false,
        };
        let mut store = ParamStore::new(DType::F32, 5);
        let net = SimClrNet::new(&mut store, pretrain_meta("r18_0.25x_sk1")).unwrap();
        store.to(dev, DType::F32).unwrap();
        let mut opt = lars(1e-6);
        let mut input = GpuInput::new(ordinal).unwrap();
        let mut stats = Vec::new();
        let mut step = 0;
        for epoch in 0..2 {
            for b in loader.raw_epoch(epoch, &cfg, simclr::data::SourceDecode::Host) {
                let b = b.unwrap();
                assert_eq!(b.pixels.len() as u64, PIXEL_BYTES);
                let before = counters();
                let x = input
                    .views(&cfg, &b, compute.unwrap_or(DType::F32))
                    .unwrap();
                let aug = counters().since(&before);
                let s = ContrastiveStep::new(0.2, policy).run(&net, &mut store, &x);
                opt.step(&mut store, 0.1).unwrap();
                let c = counters().since(&before);
                stats.push(s.unwrap());
                let what = format!("{compute:?} step {step}: input {aug:?}, step {c:?}");
                assert_eq!(aug.launches, 1, "{what}");
                assert_eq!(aug.uploads, 1, "{what}");
                assert_eq!(aug.upload_bytes, PIXEL_BYTES + TABLE_BYTES, "{what}");
                assert_eq!(
                    GpuInput::upload_bytes(&cfg, &b) as u64,
                    PIXEL_BYTES + TABLE_BYTES
                );
                assert_eq!((aug.downloads, aug.synchronizations), (0, 0), "{what}");
                // Step 0 builds the optimizer's resident table (an upload and a wait).
                if step >= 1 {
                    assert_eq!(c.uploads, 1, "{what}");
                    assert_eq!(c.upload_bytes, PIXEL_BYTES + TABLE_BYTES, "{what}");
                    assert_eq!(c.downloads, 0, "{what}");
                    assert_eq!(c.synchronizations, 0, "{what}");
                }
                println!("{what}");
                step += 1;
            }
        }
        assert_eq!(step, 6);
        for s in &stats {
            let (loss, acc) = s.read().unwrap();
            assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
            assert!((0.0..=1.0).contains(&acc), "accuracy {acc}");
        }
    }
}
