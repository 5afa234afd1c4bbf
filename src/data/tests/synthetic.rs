use crate::data::synthetic::{generate, SYNTHETIC_CLASSES};
use crate::data::{open_dataset, Dataset, DatasetSpec};
use crate::testing::fresh_seed;
use crate::Rng;

#[test]
fn synthetic_is_deterministic_per_seed_and_thread_count() {
    let seed = fresh_seed("synthetic_is_deterministic_per_seed_and_thread_count");
    let n = 30 + Rng::new(seed).below(50);
    let a = generate(n, 32, seed, 1).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let b = pool.install(|| generate(n, 32, seed, 1).unwrap());
    let c = generate(n, 32, seed.wrapping_add(1), 1).unwrap();
    let d = generate(n, 32, seed, 2).unwrap();
    for i in 0..n {
        let ai = a.image(i).unwrap();
        assert_eq!(
            ai.data,
            b.image(i).unwrap().data,
            "image {i} differs on rerun"
        );
        assert_ne!(
            ai.data,
            c.image(i).unwrap().data,
            "image {i}: seeds collide"
        );
        assert_ne!(
            ai.data,
            d.image(i).unwrap().data,
            "image {i}: splits collide"
        );
    }
    assert_eq!(a.labels(), b.labels());
}

#[test]
fn synthetic_classes_are_balanced_and_sized() {
    let seed = fresh_seed("synthetic_classes_are_balanced_and_sized");
    let mut rng = Rng::new(seed);
    let (n, size) = (10 + rng.below(300), 8 + rng.below(40));
    let s = open_dataset(&DatasetSpec {
        seed,
        synthetic_train: n,
        synthetic_test: 20,
        image_size: size,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        (s.train.len(), s.test.len(), s.train.num_classes()),
        (n, 20, 10)
    );
    let mut counts = [0usize; 10];
    (0..n).for_each(|i| counts[s.train.label(i)] += 1);
    let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(hi - lo <= 1, "unbalanced: {counts:?}");
    let im = s.train.image(rng.below(n)).unwrap();
    assert_eq!((im.height, im.width, im.channels), (size, size, 3));
    assert_eq!(s.train.class_names()[3], SYNTHETIC_CLASSES[3]);
    assert!(generate(4, 2, seed, 1).is_err(), "size 2 must be refused");
}

/// The nuisances make raw pixels a poor feature: the nearest class mean (a linear classifier
/// on raw pixels) stays far below what a network reaches, yet the images are not constant.
#[test]
fn synthetic_defeats_nearest_class_mean_on_pixels() {
    let seed = fresh_seed("synthetic_defeats_nearest_class_mean_on_pixels");
    let (train, test) = (
        generate(2000, 32, seed, 1).unwrap(),
        generate(500, 32, seed, 2).unwrap(),
    );
    let d = 32 * 32 * 3;
    let mut means = vec![vec![0f64; d]; 10];
    let mut counts = [0f64; 10];
    for i in 0..train.len() {
        let l = train.label(i);
        counts[l] += 1.0;
        for (m, &p) in means[l].iter_mut().zip(train.image(i).unwrap().data.iter()) {
            *m += p as f64;
        }
    }
    means
        .iter_mut()
        .zip(counts)
        .for_each(|(m, c)| m.iter_mut().for_each(|v| *v /= c));
    let mut correct = 0;
    for i in 0..test.len() {
        let x = test.image(i).unwrap();
        let dist = |m: &Vec<f64>| -> f64 {
            m.iter()
                .zip(x.data.iter())
                .map(|(a, &b)| (a - b as f64).powi(2))
                .sum()
        };
        let best = (0..10)
            .min_by(|&a, &b| dist(&means[a]).total_cmp(&dist(&means[b])))
            .unwrap();
        correct += (best == test.label(i)) as usize;
    }
    let acc = correct as f64 / test.len() as f64;
    eprintln!("nearest-class-mean accuracy on raw pixels: {acc:.3}");
    assert!(
        acc < 0.35,
        "raw pixels separate the classes too well: {acc}"
    );
    let var: f64 = {
        let x = test.image(0).unwrap();
        let m = x.data.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
        x.data.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / d as f64
    };
    assert!(var > 1.0, "image has no content");
}
