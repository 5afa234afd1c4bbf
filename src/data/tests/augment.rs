use crate::data::augment::{blur, color, crop, sample_rng, CropBox};
use crate::data::{
    AugmentConfig, EvalTransform, FinetuneAugment, Image, Interpolation, PretrainAugment, Transform,
};
use crate::testing::fresh_seed;
use crate::{Error, Rng};
use std::borrow::Cow;

fn random_image(h: usize, w: usize, c: usize, rng: &mut Rng) -> Image<'static> {
    Image {
        height: h,
        width: w,
        channels: c,
        data: Cow::Owned((0..h * w * c).map(|_| rng.below(256) as u8).collect()),
    }
}

#[test]
fn random_crop_area_and_aspect_stay_in_range() {
    let mut rng = Rng::new(fresh_seed("random_crop_area_and_aspect_stay_in_range"));
    let (area, aspect) = ((0.08, 1.0), (3.0 / 4.0, 4.0 / 3.0));
    let (mut small, mut large) = (0, 0);
    for _ in 0..5000 {
        let (h, w) = (100 + rng.below(300), 100 + rng.below(300));
        let b = crop::random_crop_box(h, w, area, aspect, &mut rng);
        assert!(
            b.h >= 1 && b.w >= 1 && b.y + b.h <= h && b.x + b.w <= w,
            "{b:?} in {h}x{w}"
        );
        // Rounding each side to whole pixels moves the area and the aspect by about 1 px/side.
        let frac = (b.h * b.w) as f64 / (h * w) as f64;
        let slack = (b.h + b.w + 1) as f64 / (h * w) as f64;
        assert!(
            frac >= area.0 - slack && frac <= area.1 + 1e-12,
            "area {frac} of {h}x{w}"
        );
        let ar = b.w as f64 / b.h as f64;
        let aslack = 1.0 / b.h.min(b.w) as f64 * 2.5;
        assert!(
            ar >= aspect.0 * (1.0 - aslack) && ar <= aspect.1 * (1.0 + aslack),
            "aspect {ar} {b:?}"
        );
        small += (frac < 0.3) as usize;
        large += (frac > 0.7) as usize;
    }
    assert!(
        small > 500 && large > 100,
        "area range not covered: {small} small, {large} large"
    );
}

#[test]
fn resize_at_same_size_is_identity_and_flip_mirrors() {
    let mut rng = Rng::new(fresh_seed(
        "resize_at_same_size_is_identity_and_flip_mirrors",
    ));
    let (h, w, c) = (3 + rng.below(20), 3 + rng.below(20), 1 + 2 * rng.below(2));
    let img = random_image(h, w, c, &mut rng);
    let full = CropBox { y: 0, x: 0, h, w };
    for interp in [Interpolation::Bilinear, Interpolation::Bicubic] {
        let (mut a, mut f) = (vec![0f32; h * w * c], vec![0f32; h * w * c]);
        crop::resize_crop(&img, full, h, w, interp, false, &mut a);
        crop::resize_crop(&img, full, h, w, interp, true, &mut f);
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    let want = img.data[(y * w + x) * c + ch] as f32 / 255.0;
                    assert!((a[(y * w + x) * c + ch] - want).abs() < 1e-5, "{interp:?}");
                    assert!(
                        (f[(y * w + (w - 1 - x)) * c + ch] - want).abs() < 1e-5,
                        "{interp:?} flip"
                    );
                }
            }
        }
    }
}

#[test]
fn pretrain_views_stay_in_unit_range_and_are_seeded() {
    let seed = fresh_seed("pretrain_views_stay_in_unit_range_and_are_seeded");
    let mut rng = Rng::new(seed);
    for (cfg, c) in [
        (AugmentConfig::imagenet(40), 3),
        (AugmentConfig::cifar(24), 3),
        (AugmentConfig::imagenet(32), 1),
    ] {
        let aug = PretrainAugment::new(cfg.clone()).unwrap();
        for k in 0..60 {
            let img = random_image(16 + rng.below(60), 16 + rng.below(60), c, &mut rng);
            let a = aug.apply_vec(&img, &mut sample_rng(seed, 0, k, 0)).unwrap();
            assert_eq!(a.len(), cfg.size * cfg.size * c);
            assert!(
                a.iter().all(|v| (0.0..=1.0).contains(v)),
                "value outside [0,1]: {:?}",
                a.iter().find(|v| !(0.0..=1.0).contains(*v))
            );
            let again = aug.apply_vec(&img, &mut sample_rng(seed, 0, k, 0)).unwrap();
            assert_eq!(a, again, "same seed, different output");
            let other = aug.apply_vec(&img, &mut sample_rng(seed, 0, k, 1)).unwrap();
            assert_ne!(a, other, "other view, same output");
            let next = aug
                .apply_vec(&img, &mut sample_rng(seed.wrapping_add(1), 0, k, 0))
                .unwrap();
            assert_ne!(a, next, "other seed, same output");
        }
    }
}

#[test]
fn forced_grayscale_gives_equal_channels() {
    let seed = fresh_seed("forced_grayscale_gives_equal_channels");
    let mut rng = Rng::new(seed);
    let cfg = AugmentConfig {
        grayscale_p: 1.0,
        ..AugmentConfig::imagenet(24)
    };
    let aug = PretrainAugment::new(cfg).unwrap();
    for k in 0..50 {
        let img = random_image(30, 30, 3, &mut rng);
        let a = aug.apply_vec(&img, &mut sample_rng(seed, 1, k, 0)).unwrap();
        for p in a.chunks_exact(3) {
            assert!(
                (p[0] - p[1]).abs() < 1e-6 && (p[1] - p[2]).abs() < 1e-6,
                "{p:?}"
            );
        }
    }
}

#[test]
fn blur_keeps_a_constant_image_and_the_mean() {
    let mut rng = Rng::new(fresh_seed("blur_keeps_a_constant_image_and_the_mean"));
    assert_eq!(blur::kernel_size(224, 0.1), 23);
    for _ in 0..20 {
        let (h, w, c) = (5 + rng.below(40), 5 + rng.below(40), 1 + 2 * rng.below(2));
        let v = rng.uniform() as f32;
        let mut px = vec![v; h * w * c];
        let k = 2 * rng.below(6) + 1;
        blur::gaussian_blur(&mut px, h, w, c, k, rng.range(0.1, 2.0));
        // f32 weights sum to 1 within a few ulps; 2k taps add at most ~2k ulps per pixel.
        let mean = px.iter().map(|&p| p as f64).sum::<f64>() / px.len() as f64;
        let worst = px.iter().fold(0f32, |m, p| m.max((p - v).abs()));
        assert!(
            (mean - v as f64).abs() < 1e-5 && worst < 1e-5,
            "{v}: mean {mean}, worst {worst}"
        );
    }
    // A blurred random image has less variance and (edges aside) the same mean.
    let mut px: Vec<f32> = (0..64 * 64).map(|_| rng.uniform() as f32).collect();
    let m0 = px.iter().map(|&p| p as f64).sum::<f64>() as f32 / px.len() as f32;
    blur::gaussian_blur(&mut px, 64, 64, 1, 7, 1.5);
    let m1 = px.iter().map(|&p| p as f64).sum::<f64>() as f32 / px.len() as f32;
    let var = px.iter().map(|p| (p - m1).powi(2)).sum::<f32>() / px.len() as f32;
    assert!(
        (m0 - m1).abs() < 0.01 && var < 1.0 / 12.0 / 4.0,
        "mean {m0}->{m1}, var {var}"
    );
}

#[test]
fn colour_ops_identities() {
    let mut rng = Rng::new(fresh_seed("colour_ops_identities"));
    let px: Vec<f32> = (0..300).map(|_| rng.uniform() as f32).collect();
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
    let mut p = px.clone();
    color::brightness(&mut p, 1.0);
    color::contrast(&mut p, 3, 1.0);
    color::saturation(&mut p, 1.0);
    color::hue(&mut p, 0.0);
    assert!(close(&p, &px), "unit factors changed the image");
    color::hue(&mut p, 1.0 / 3.0);
    color::hue(&mut p, 2.0 / 3.0);
    assert!(close(&p, &px), "a full hue turn changed the image");
    color::saturation(&mut p, 0.0);
    assert!(p
        .chunks_exact(3)
        .all(|q| (q[0] - q[1]).abs() < 1e-6 && (q[1] - q[2]).abs() < 1e-6));
    let mut q = px.clone();
    color::contrast(&mut q, 1, 0.0);
    assert!(
        q.windows(2).all(|w| (w[0] - w[1]).abs() < 1e-6),
        "zero contrast is not flat"
    );
}

#[test]
fn eval_and_finetune_transforms() {
    let seed = fresh_seed("eval_and_finetune_transforms");
    let mut rng = Rng::new(seed);
    let img = random_image(40, 48, 3, &mut rng);
    // Centre crop 0.875 of 40 = 35 px square at (2, 6); resized to 35 it is the crop itself.
    let ev = EvalTransform::new(AugmentConfig {
        eval_crop: 0.875,
        ..AugmentConfig::imagenet(35)
    })
    .unwrap();
    let a = ev.apply_vec(&img, &mut Rng::new(seed)).unwrap();
    let b = ev.apply_vec(&img, &mut Rng::new(seed ^ 1)).unwrap();
    assert_eq!(a, b, "evaluation must not be random");
    for (y, x) in [(0, 0), (34, 34), (rng.below(35), rng.below(35))] {
        let want = img.data[((y + 2) * 48 + x + 6) * 3] as f32 / 255.0;
        assert!((a[(y * 35 + x) * 3] - want).abs() < 1e-5);
    }
    let ft = FinetuneAugment::new(AugmentConfig::cifar(20)).unwrap();
    let v: Vec<Vec<f32>> = (0..4)
        .map(|k| ft.apply_vec(&img, &mut sample_rng(seed, 0, 0, k)).unwrap())
        .collect();
    assert!(v.iter().all(|x| x.iter().all(|p| (0.0..=1.0).contains(p))));
    assert_ne!(v[0], v[1]);
}

#[test]
fn bad_parameters_are_config_errors() {
    let base = AugmentConfig::imagenet(32);
    let bad = [
        AugmentConfig {
            crop_area: (0.5, 0.2),
            ..base.clone()
        },
        AugmentConfig {
            crop_aspect: (0.0, 1.0),
            ..base.clone()
        },
        AugmentConfig {
            flip_p: 1.5,
            ..base.clone()
        },
        AugmentConfig {
            size: 0,
            ..base.clone()
        },
        AugmentConfig {
            blur_sigma: (-1.0, 2.0),
            ..base.clone()
        },
        AugmentConfig {
            eval_crop: 0.0,
            ..base.clone()
        },
    ];
    for cfg in bad {
        assert!(
            matches!(PretrainAugment::new(cfg.clone()), Err(Error::Config(_))),
            "{cfg:?}"
        );
    }
    // Normalisation with the wrong channel count fails on use, not with a panic.
    let aug = PretrainAugment::new(AugmentConfig {
        normalize: Some(crate::data::Normalize::imagenet()),
        ..base
    })
    .unwrap();
    let img = random_image(8, 8, 1, &mut Rng::new(0));
    assert!(matches!(
        aug.apply_vec(&img, &mut Rng::new(1)),
        Err(Error::Config(_))
    ));
}
