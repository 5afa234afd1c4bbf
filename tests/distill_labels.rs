//! Distillation with α < 1: the labelled cross-entropy sees only the labelled subset.

use simclr::train::labelled_stream::LabelledStream;
use simclr::train::{distill, finetune, Config, Env};

#[path = "support/mod.rs"]
mod support;

#[test]
fn labelled_term_draws_only_labelled_images() {
    let dir = support::scratch::scratch("distill", "labels");
    let mut c = Config {
        model: "r18_0.25x_sk0".into(),
        out: dir.to_path_buf(),
        image_size: Some(16),
        synthetic_train: 60,
        synthetic_test: 10,
        device: "cpu".into(),
        ..Config::default()
    };
    c.finetune.label_fraction = 0.2;
    c.finetune.epochs = 1;
    c.finetune.batch_size = 4;
    c.distill.epochs = 1;
    c.distill.batch_size = 20;
    c.distill.alpha = 0.5;
    let mut env = Env::open(c, false).unwrap();
    let labelled = finetune::labelled_indices(&env).unwrap();
    assert_eq!(labelled.len(), 12);
    let mut stream = LabelledStream::new(&env, 5).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..8 {
        let b = stream.next_batch().unwrap();
        for (i, y) in b.indices.iter().zip(&b.labels) {
            assert!(labelled.contains(i), "image {i} is not labelled");
            assert_eq!(*y, env.splits.train.label(*i));
            seen.insert(*i);
        }
    }
    // Four reshuffled passes of two whole batches (the last partial batch is dropped).
    assert!((10..=12).contains(&seen.len()), "{seen:?}");
    // The stage runs with α < 1 end to end.
    finetune::run(&mut env, "finetune", None).unwrap();
    let r = distill::run(&mut env, &dir.join("finetune.safetensors")).unwrap();
    assert!(r.top1.is_some());
}
