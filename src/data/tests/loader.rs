use crate::data::synthetic::generate;
use crate::data::{
    class_balanced_subset, AugmentConfig, Dataset, EvalTransform, Image, Loader, LoaderConfig,
    PretrainAugment,
};
use crate::testing::fresh_seed;
use crate::{Error, Result, Rng};
use std::sync::Arc;

fn loader(n: usize, seed: u64, cfg: LoaderConfig) -> Loader {
    let ds = Arc::new(generate(n, 16, seed, 1).unwrap());
    let aug = Arc::new(PretrainAugment::new(AugmentConfig::cifar(12)).unwrap());
    Loader::new(ds, aug, cfg).unwrap()
}

#[test]
fn every_index_once_per_epoch_in_a_seeded_order() {
    let seed = fresh_seed("every_index_once_per_epoch_in_a_seeded_order");
    let mut rng = Rng::new(seed);
    let (n, bs) = (20 + rng.below(60), 1 + rng.below(16));
    for drop_last in [false, true] {
        let cfg = LoaderConfig {
            batch_size: bs,
            views: 2,
            seed,
            workers: 1 + rng.below(3),
            prefetch: 1 + rng.below(4),
            drop_last,
            ..Default::default()
        };
        let l = loader(n, seed, cfg);
        let mut orders = Vec::new();
        for epoch in 0..2 {
            let batches: Vec<_> = l.epoch(epoch).collect::<Result<_>>().unwrap();
            assert_eq!(batches.len(), l.batches_per_epoch());
            let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
            orders.push(seen.clone());
            for b in &batches {
                let m = b.indices.len();
                assert!(m == bs || (!drop_last && m < bs && m > 0), "batch of {m}");
                assert_eq!(b.views.len(), 2);
                for v in &b.views {
                    assert_eq!(v.shape(), &[m, 12, 12, 3]);
                }
                assert_ne!(
                    b.views[0].to_vec_f32().unwrap(),
                    b.views[1].to_vec_f32().unwrap()
                );
                // Synthetic labels cycle through the ten classes.
                assert_eq!(
                    b.labels,
                    b.indices.iter().map(|&i| i % 10).collect::<Vec<_>>()
                );
            }
            seen.sort_unstable();
            if drop_last {
                assert_eq!(seen.len(), n / bs * bs);
                seen.dedup();
                assert_eq!(seen.len(), n / bs * bs, "an index repeats");
            } else {
                assert_eq!(seen, (0..n).collect::<Vec<_>>());
            }
        }
        assert_ne!(orders[0], orders[1], "epochs share an order");
        assert_eq!(orders[0], l.order(0)[..orders[0].len()]);
    }
}

#[test]
fn batches_do_not_depend_on_worker_count() {
    let seed = fresh_seed("batches_do_not_depend_on_worker_count");
    let base = LoaderConfig {
        batch_size: 7,
        views: 2,
        seed,
        ..Default::default()
    };
    let run = |workers: usize, prefetch: usize| -> Vec<Vec<f32>> {
        let l = loader(
            40,
            seed,
            LoaderConfig {
                workers,
                prefetch,
                ..base.clone()
            },
        );
        l.epoch(3)
            .flat_map(|b| {
                b.unwrap()
                    .views
                    .into_iter()
                    .map(|v| v.to_vec_f32().unwrap())
            })
            .collect()
    };
    let inline = run(0, 1);
    assert_eq!(inline, run(1, 1));
    assert_eq!(inline, run(3, 5));
    // Stopping early must not hang (workers blocked on full channels exit).
    let l = loader(
        40,
        seed,
        LoaderConfig {
            workers: 2,
            prefetch: 2,
            ..base
        },
    );
    let first = l.epoch(0).next().unwrap().unwrap();
    assert_eq!(first.indices.len(), 7);
}

#[test]
fn subsets_and_unshuffled_evaluation() {
    let seed = fresh_seed("subsets_and_unshuffled_evaluation");
    let mut rng = Rng::new(seed);
    let ds: Arc<dyn Dataset> = Arc::new(generate(200, 16, seed, 1).unwrap());
    let frac = rng.range(0.02, 0.5);
    let sub = class_balanced_subset(ds.as_ref(), frac, seed).unwrap();
    assert_eq!(sub.len(), (frac * 200.0).round() as usize);
    let mut counts = [0usize; 10];
    sub.iter().for_each(|&i| counts[ds.label(i)] += 1);
    assert!(
        counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
        "{counts:?}"
    );
    let ev = Arc::new(EvalTransform::new(AugmentConfig::cifar(16)).unwrap());
    let cfg = LoaderConfig {
        batch_size: 5,
        shuffle: false,
        indices: Some(sub.clone()),
        workers: 2,
        ..Default::default()
    };
    let l = Loader::new(ds.clone(), ev, cfg).unwrap();
    let got: Vec<usize> = l.epoch(0).flat_map(|b| b.unwrap().indices).collect();
    assert_eq!(got, sub);
    // Without crop, the eval view is the image itself scaled to [0, 1].
    let b = l.epoch(0).next().unwrap().unwrap();
    let img = ds.image(b.indices[0]).unwrap();
    let v = b.views[0].to_vec_f32().unwrap();
    assert!(img
        .data
        .iter()
        .zip(&v)
        .all(|(&p, &q)| (p as f32 / 255.0 - q).abs() < 1e-5));
    let bad = LoaderConfig {
        indices: Some(vec![0, 200]),
        ..Default::default()
    };
    let ev = Arc::new(EvalTransform::new(AugmentConfig::cifar(16)).unwrap());
    assert!(matches!(Loader::new(ds, ev, bad), Err(Error::Config(_))));
}

/// A dataset whose image `bad` cannot be read.
struct Broken {
    inner: crate::data::ArrayDataset,
    bad: usize,
}

impl Dataset for Broken {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn image(&self, i: usize) -> Result<Image<'_>> {
        if i == self.bad {
            return Err(Error::Data {
                path: "broken.jpg".into(),
                msg: "cannot decode".into(),
            });
        }
        self.inner.image(i)
    }
    fn label(&self, i: usize) -> usize {
        self.inner.label(i)
    }
    fn class_names(&self) -> &[String] {
        self.inner.class_names()
    }
    fn channels(&self) -> usize {
        3
    }
}

#[test]
fn a_failing_image_ends_the_epoch_with_its_error() {
    let seed = fresh_seed("a_failing_image_ends_the_epoch_with_its_error");
    let bad = Rng::new(seed).below(30);
    let ds = Arc::new(Broken {
        inner: generate(30, 16, seed, 1).unwrap(),
        bad,
    });
    let aug = Arc::new(PretrainAugment::new(AugmentConfig::cifar(8)).unwrap());
    let cfg = LoaderConfig {
        batch_size: 4,
        seed,
        workers: 2,
        ..Default::default()
    };
    let l = Loader::new(ds, aug, cfg).unwrap();
    let results: Vec<_> = l.epoch(0).collect();
    let last = results.last().unwrap();
    assert!(
        matches!(last, Err(Error::Data { .. })),
        "{:?}",
        last.as_ref().err()
    );
    assert!(results[..results.len() - 1].iter().all(|r| r.is_ok()));
}
