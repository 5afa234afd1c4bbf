//! The trainer binary on bad input: a clear message, exit status 1, no panic, nothing
//! half-written.

use std::process::Command;

#[path = "support/mod.rs"]
mod support;
use support::scratch::Scratch;

fn simclr(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_simclr"))
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "panic: {err}");
    (out.status.code().unwrap_or(-1), err)
}

fn scratch(name: &str) -> Scratch {
    support::scratch::scratch("cli", name)
}

const TINY: [&str; 10] = [
    "--image-size",
    "32",
    "--synthetic-train",
    "40",
    "--synthetic-test",
    "20",
    "--epochs",
    "1",
    "--batch-size",
    "8",
];

#[test]
fn bad_flags_are_rejected_before_any_work() {
    let out = scratch("flags");
    let o = out.to_str().unwrap();
    let (code, err) = simclr(&["pretrain", "--model", "r50_1x_sk7", "--out", o]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown model 'r50_1x_sk7'"), "{err}");
    for bad in ["0", "1.5", "-0.1"] {
        let flag = format!("--label-fraction={bad}");
        let (code, err) = simclr(&["finetune", &flag, "--out", o]);
        assert_eq!(code, 1);
        assert!(err.contains("--label-fraction must be in (0, 1]"), "{err}");
    }
    let (code, err) = simclr(&["pretrain", "--dataset", "imagenet22k", "--out", o]);
    assert_eq!(code, 1);
    assert!(err.contains("imagenet22k"), "{err}");
}

#[test]
fn unwritable_out_is_a_clear_error() {
    let file = scratch("file");
    std::fs::write(&file, b"not a directory").unwrap();
    let out = file.join("run");
    let (code, err) = simclr(&["pretrain", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot write to --out"), "{err}");
}

#[test]
fn wrong_checkpoints_are_refused() {
    let out = scratch("ckpt");
    let o = out.to_str().unwrap();
    let mut args = vec!["pretrain", "--out", o, "--model", "r18_0.25x_sk0"];
    args.extend(TINY);
    assert_eq!(simclr(&args).0, 0);
    // A checkpoint of another architecture.
    let mut args = vec!["finetune", "--out", o, "--model", "r18_0.5x_sk0"];
    args.extend(TINY);
    let (code, err) = simclr(&args);
    assert_eq!(code, 1);
    assert!(
        err.contains("holds a r18_0.25x_sk0 model, but --model is r18_0.5x_sk0"),
        "{err}"
    );
    assert!(!out.join("finetune.safetensors").exists());
    // A missing teacher.
    let (code, err) = simclr(&[
        "distill",
        "--out",
        o,
        "--teacher",
        "/nonexistent/t.safetensors",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/t.safetensors"), "{err}");
    // A pretraining checkpoint is no classifier.
    let (code, err) = simclr(&[
        "eval",
        "--out",
        o,
        "--checkpoint",
        out.join("pretrain.safetensors").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("no classifier"), "{err}");
}

#[test]
fn a_teacher_with_another_class_count_is_refused() {
    use simclr::params::ParamStore;
    use simclr::train::model::{self, Classifier, ModelMeta};
    let out = scratch("teacher");
    std::fs::create_dir_all(&out).unwrap();
    let meta = ModelMeta {
        stage: "finetune".into(),
        model: "r18_0.25x_sk0".into(),
        image_size: 32,
        in_channels: 3,
        proj_layers: 3,
        proj_dim: 64,
        proj_layer: 1,
        num_classes: 7,
        stem_pool_padding: simclr::nn::StemPoolPadding::Symmetric,
    };
    let mut store = ParamStore::new(simclr::DType::F32, 0);
    Classifier::new(&mut store, meta.clone()).unwrap();
    let t = out.join("teacher.safetensors");
    model::save(&store, &meta, &t).unwrap();
    let mut args = vec![
        "distill",
        "--out",
        out.to_str().unwrap(),
        "--teacher",
        t.to_str().unwrap(),
    ];
    args.extend(TINY);
    let (code, err) = simclr(&args);
    assert_eq!(code, 1);
    assert!(
        err.contains("the teacher predicts 7 classes, the dataset has 10"),
        "{err}"
    );
    assert!(!out.join("distill.safetensors").exists());
}

#[test]
fn pretraining_that_will_not_fit_stops_before_its_first_step() {
    let out = scratch("memory");
    let o = out.to_str().unwrap();
    let mut args = vec!["pretrain", "--out", o, "--memory-limit", "0.02"];
    args.extend(["--model", "r18_0.25x_sk1"]);
    args.extend(TINY);
    let (code, err) = simclr(&args);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("error: out of memory: pretraining"), "{err}");
    assert!(err.contains("--micro-batch"), "{err}");
    assert!(!out.join("pretrain.safetensors").exists());
    assert!(!out.join("pretrain.state.safetensors").exists());
    // A limit it fits in trains as usual.
    let mut args = vec!["pretrain", "--out", o, "--memory-limit", "4"];
    args.extend(["--model", "r18_0.25x_sk1"]);
    args.extend(TINY);
    let (code, err) = simclr(&args);
    assert_eq!(code, 0, "{err}");
    assert!(out.join("pretrain.safetensors").exists());
}
