//! `--augment-on gpu` through the real loader: a generated folder of JPEGs and PNGs of mixed
//! sizes (grayscale and EXIF-rotated files among them) is loaded once as augmented views (the
//! CPU path, bilinear) and once as u8 sources and parameters (`Loader::raw_epoch`), which
//! `data::gpu_input::GpuInput` uploads and augments. Same seed, so:
//!
//! - the parameters are the CPU path's: the raw batch augmented on the CPU equals the loader's
//!   views exactly;
//! - the GPU views equal them within the tolerance src/data/augment/cuda_tests.rs derives
//!   (L·m·2^-24 with L = 134 the stages' Lipschitz bound and m the terms of the longest sum,
//!   plus half a bf16 ulp for bf16 output).
//!
//! Without a usable GPU the test prints `skipped: <reason>`.
#![cfg(feature = "cuda")]

#[path = "cuda_common.rs"]
mod common;
use common::{assert_views_match, gpu};
#[path = "support/mixed_folder.rs"]
mod mixed_folder;
use mixed_folder::mixed_folder;

use simclr::data::gpu_input::GpuInput;
use simclr::data::stream::{open_folder, BadImages};
use simclr::data::{
    AugmentConfig, Interpolation, Loader, LoaderConfig, Normalize, PretrainAugment, Transform,
};
use simclr::testing::fresh_seed;
use simclr::{DType, Rng};
use std::sync::Arc;

#[test]
fn gpu_views_through_the_loader_match_the_cpu_views() {
    let Some(simclr::Device::Cuda(ordinal)) = gpu() else {
        return;
    };
    let seed = fresh_seed("gpu_views_through_the_loader_match_the_cpu_views");
    let mut rng = Rng::new(seed);
    let root = tempfile::tempdir().unwrap();
    mixed_folder(root.path(), 5, (40, 150), &mut rng);
    let (train, _) = open_folder(root.path(), BadImages::Fail).unwrap();
    let train: Arc<dyn simclr::data::Dataset> = Arc::new(train);
    let base = AugmentConfig {
        interpolation: Interpolation::Bilinear,
        ..AugmentConfig::imagenet(24 + rng.below(16))
    };
    let configs = [
        base.clone(),
        AugmentConfig {
            color_p: 1.0,
            blur_p: 1.0,
            grayscale_p: 0.3,
            normalize: Some(Normalize::imagenet()),
            ..base.clone()
        },
    ];
    for cfg in &configs {
        let aug: Arc<dyn Transform> = Arc::new(PretrainAugment::new(cfg.clone()).unwrap());
        let lc = LoaderConfig {
            batch_size: 4,
            views: 2,
            seed: rng.next_u64(),
            shuffle: true,
            workers: 2,
            prefetch: 2,
            drop_last: true,
            indices: None,
            shard: None,
        };
        let loader = Loader::new(train.clone(), aug, lc).unwrap();
        let mut input = GpuInput::new(ordinal).unwrap();
        let cpu = loader.epoch(1);
        let raw = loader.raw_epoch(1, cfg, simclr::data::SourceDecode::Host);
        // Every batch is enqueued before any result is read back, as training does (the host
        // never waits between steps): the double buffer's reuse rests on the device's events
        // alone, which the emulated device's stream-order check holds it to.
        let (mut out, mut done) = (Vec::new(), Vec::new());
        for (c, r) in cpu.zip(raw) {
            let (c, r) = (c.unwrap(), r.unwrap());
            assert_eq!(c.indices, r.indices);
            assert_eq!(c.labels, r.labels);
            let want: Vec<f32> = c
                .views
                .iter()
                .flat_map(|v| v.to_vec_f32().unwrap())
                .collect();
            // Same generators, same draws: the CPU applied to the raw batch is the loader's.
            assert_eq!(r.apply_cpu(cfg).unwrap(), want, "parameters differ");
            for dt in [DType::F32, DType::BF16] {
                let got = input.views(cfg, &r, dt).unwrap();
                assert_eq!(got.shape(), &[8, cfg.size, cfg.size, 3]);
                assert_eq!(got.dtype(), dt);
                out.push((got, done.len()));
            }
            done.push((r, want));
        }
        for (got, k) in &out {
            let (r, want) = &done[*k];
            assert_views_match(got, want, r, cfg.size);
        }
        let batches = done.len();
        assert_eq!(batches, loader.batches_per_epoch());
        assert!(batches >= 2, "the double buffer is used in turn");
    }
}
