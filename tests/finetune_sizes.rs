//! Fine-tuning a checkpoint pretrained at another image size, and linear evaluation on a
//! labelled subset.

use simclr::train::model::ModelMeta;
use simclr::train::{finetune, linear_eval, pretrain, Config, Env};
use std::path::Path;

#[path = "support/mod.rs"]
mod support;

fn tiny(out: &Path, size: usize) -> Config {
    let mut c = Config {
        model: "r18_0.25x_sk0".into(),
        out: out.to_path_buf(),
        image_size: Some(size),
        synthetic_train: 40,
        synthetic_test: 10,
        device: "cpu".into(),
        ..Config::default()
    };
    c.pretrain.epochs = 1;
    c.pretrain.batch_size = 8;
    c.pretrain.knn_every = 0;
    c.finetune.epochs = 1;
    c.finetune.batch_size = 8;
    c.finetune.label_fraction = 0.5;
    c.linear_eval.epochs = 1;
    c.linear_eval.batch_size = 4;
    c
}

#[test]
fn finetune_takes_a_checkpoint_pretrained_at_another_size() {
    let dir = support::scratch::scratch("sizes", "finetune");
    let mut env = Env::open(tiny(&dir, 24), false).unwrap();
    pretrain::run(&mut env).unwrap();
    let pre = dir.join("pretrain.safetensors");
    // The same images at 16 px: the weights fit, the checkpoint's stem is kept.
    let mut env = Env::open(tiny(&dir, 16), false).unwrap();
    let r = finetune::run(&mut env, "finetune", Some(&pre)).unwrap();
    assert!(r.top1.is_some());
    let meta = ModelMeta::read(&dir.join("finetune.safetensors")).unwrap();
    assert_eq!(meta.image_size, 24);
    simclr::train::eval(&mut env, &dir.join("finetune.safetensors")).unwrap();
}

#[test]
fn linear_eval_can_train_on_a_labelled_subset() {
    let dir = support::scratch::scratch("sizes", "linear");
    let mut cfg = tiny(&dir, 16);
    cfg.linear_eval.label_fraction = 0.25;
    let mut env = Env::open(cfg, false).unwrap();
    pretrain::run(&mut env).unwrap();
    let r = linear_eval::run(&mut env, &dir.join("pretrain.safetensors")).unwrap();
    assert_eq!(r.summary["labelled"], 10);
}
