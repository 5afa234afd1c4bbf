//! GPU augmentation (kernels/augment.cu) against the CPU augmentation on the same random
//! parameters: both apply `params::draw`'s draws, the CPU through `params::apply` (bilinear),
//! the GPU in one launch for every view, f32 and bf16 out. Without a usable GPU the test prints
//! `skipped: <reason>`.
//!
//! Tolerance. Both sides run the same f32 operations in the same order (tap weights computed
//! in f64 and rounded once); they may differ by FMA contraction and by the order of the
//! contrast mean's sum. A sum of m terms then differs by at most m·u (u = 2^-24) relative to
//! its absolute sum, which is within [0, 1] per value here: m is at most the taps of both
//! resampling axes plus the size² terms of the mean. Later stages amplify a difference by at
//! most their Lipschitz constants: brightness and contrast 1 + 0.8 = 1.8 each, saturation
//! 1 + 2·1.8 = 4.6, hue (piecewise linear HSV, slopes up to 6/6 per channel) 2, grayscale and
//! blur 1, normalisation 1/min std = 1/0.224: together L = 1.8·1.8·4.6·2·4.47 < 134. A bf16
//! output adds its rounding, half an ulp: 2^-9 relative to the value.

use crate::data::augment::cuda::augment_views;
use crate::data::augment::params::{apply, draw, ViewParams};
use crate::data::{AugmentConfig, Image, Interpolation, Normalize};
use crate::testing::augment_tolerance::{augment_terms, augment_worst};
use crate::testing::device::device_test;
use crate::testing::fresh_seed;
use crate::{DType, Device, Rng};
use std::borrow::Cow;

/// The six orders of three channel gains: each puts a pixel in its own sixth of the hue circle,
/// so every branch of the HSV conversion runs in every image (bands of 4 rows take turns).
const GAINS: [[f64; 3]; 6] = [
    [0.6, 0.8, 1.0],
    [0.6, 1.0, 0.8],
    [0.8, 0.6, 1.0],
    [0.8, 1.0, 0.6],
    [1.0, 0.6, 0.8],
    [1.0, 0.8, 0.6],
];

fn image(h: usize, w: usize, rng: &mut Rng) -> Image<'static> {
    // Smooth content with noise: flat regions (hue's gray branch), strong edges, every hue sector.
    let (a, b) = (rng.range(0.5, 6.0), rng.range(0.5, 6.0));
    let mut data = Vec::with_capacity(h * w * 3);
    for y in 0..h {
        for x in 0..w {
            let t = ((x as f64 / w as f64 * a).sin() + (y as f64 / h as f64 * b).cos() + 2.0) / 4.0;
            for gain in GAINS[(y / 4) % 6] {
                let v = if (x / 7 + y / 5) % 4 == 0 {
                    128.0
                } else {
                    255.0 * t * gain + rng.range(0.0, 30.0)
                };
                data.push(v.clamp(0.0, 255.0) as u8);
            }
        }
    }
    Image {
        height: h,
        width: w,
        channels: 3,
        data: Cow::Owned(data),
    }
}

fn gpu_augmentation_matches_the_cpu_on_the_same_draws(dev: Device) {
    let crate::Device::Cuda(ordinal) = dev else {
        unreachable!()
    };
    let mut rng = Rng::new(fresh_seed(
        "gpu_augmentation_matches_the_cpu_on_the_same_draws",
    ));
    let images: Vec<Image> = (0..4)
        .map(|_| {
            let (h, w) = (20 + rng.below(80), 20 + rng.below(80));
            image(h, w, &mut rng)
        })
        .collect();
    let base = AugmentConfig {
        interpolation: Interpolation::Bilinear,
        ..AugmentConfig::imagenet(24 + rng.below(24))
    };
    // The paper's probabilities, then every stage forced on, then normalised output.
    let configs = [
        base.clone(),
        AugmentConfig {
            color_p: 1.0,
            blur_p: 1.0,
            grayscale_p: 0.3,
            ..base.clone()
        },
        AugmentConfig {
            color_p: 1.0,
            blur_p: 0.5,
            normalize: Some(Normalize::imagenet()),
            ..base.clone()
        },
    ];
    for cfg in &configs {
        // Each image twice, as a batch's two views; odd images as if decoded at half scale.
        let mut views: Vec<(usize, (usize, usize), ViewParams)> = Vec::new();
        for (i, img) in images.iter().enumerate() {
            let full = if i % 2 == 1 {
                (2 * img.height, 2 * img.width)
            } else {
                (img.height, img.width)
            };
            for _ in 0..2 {
                views.push((i, full, draw(cfg, full, &mut rng)));
            }
        }
        let per = cfg.size * cfg.size * 3;
        let mut want = vec![0f32; views.len() * per];
        for (k, (i, full, p)) in views.iter().enumerate() {
            apply(
                cfg,
                p,
                &images[*i],
                *full,
                &mut want[k * per..(k + 1) * per],
            )
            .unwrap();
        }
        let max_side = images.iter().map(|m| m.height.max(m.width)).max().unwrap();
        let m = augment_terms(max_side, cfg.size);
        for dt in [DType::F32, DType::BF16] {
            let got = augment_views(ordinal, cfg, &images, &views, dt).unwrap();
            assert_eq!(got.shape(), &[views.len(), cfg.size, cfg.size, 3]);
            let got = got
                .to_device(crate::Device::Cpu)
                .unwrap()
                .to_vec_f64()
                .unwrap();
            let worst = augment_worst(&got, &want, m, dt);
            let (r, j) = worst;
            println!("{}: worst difference {r:.3} of the tolerance", dt.name());
            assert!(
                r <= 1.0,
                "{} view {} value {j}: got {} want {} ({}x tolerance); views {:?}",
                dt.name(),
                j / per,
                got[j],
                want[j],
                r,
                views[j / per]
            );
        }
    }
}
device_test!(gpu_augmentation_matches_the_cpu_on_the_same_draws);
