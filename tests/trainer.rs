//! The trainer: resume gives the same weights as an uninterrupted run, label subsets are
//! class-balanced and deterministic, and stages write what they promise.

use simclr::checkpoint::read_tensors;
use simclr::train::{self, finetune, pretrain, Config, Env};
use std::path::Path;

#[path = "support/mod.rs"]
mod support;
use support::scratch::Scratch;

fn scratch(name: &str) -> Scratch {
    support::scratch::scratch("trainer", name)
}

/// A run small enough for a test: 48 synthetic 32-px images, a quarter-width ResNet-18.
fn tiny(out: &Path) -> Config {
    let mut c = Config {
        model: "r18_0.25x_sk1".into(),
        image_size: Some(32),
        out: out.to_path_buf(),
        synthetic_train: 48,
        synthetic_test: 20,
        device: "cpu".into(),
        log_every: 1,
        ..Config::default()
    };
    c.pretrain.epochs = 2;
    c.pretrain.batch_size = 16;
    c.pretrain.queue_size = 40;
    c.finetune.epochs = 2;
    c.finetune.batch_size = 8;
    c.finetune.label_fraction = 0.5;
    c
}

fn tensors(path: &Path) -> Vec<(String, Vec<f64>)> {
    let bytes = std::fs::read(path).unwrap();
    let mut v: Vec<_> = read_tensors(&bytes, path)
        .unwrap()
        .into_iter()
        .map(|(k, t)| (k, t.to_vec_f64().unwrap()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn resumed_pretraining_and_finetuning_end_with_the_weights_of_an_uninterrupted_run() {
    let (a, b) = (scratch("whole"), scratch("resumed"));
    let mut env = Env::open(tiny(&a), false).unwrap();
    pretrain::run(&mut env).unwrap();
    finetune::run(&mut env, "finetune", Some(&a.join("pretrain.safetensors"))).unwrap();

    // Interrupted after one epoch of each stage, then resumed.
    let mut env = Env::open(tiny(&b), false).unwrap();
    env.stop_after_epochs = Some(1);
    assert!(!pretrain::run(&mut env).unwrap().complete);
    assert!(
        !b.join("pretrain.safetensors").exists(),
        "an interrupted stage must not write its final checkpoint"
    );
    let mut env = Env::open(tiny(&b), true).unwrap();
    assert!(pretrain::run(&mut env).unwrap().complete);
    env.stop_after_epochs = Some(1);
    finetune::run(&mut env, "finetune", Some(&b.join("pretrain.safetensors"))).unwrap();
    let mut env = Env::open(tiny(&b), true).unwrap();
    finetune::run(&mut env, "finetune", Some(&b.join("pretrain.safetensors"))).unwrap();

    for name in [
        "pretrain.safetensors",
        "pretrain.state.safetensors",
        "finetune.safetensors",
    ] {
        let (x, y) = (tensors(&a.join(name)), tensors(&b.join(name)));
        assert_eq!(x.len(), y.len(), "{name}");
        for ((kx, vx), (ky, vy)) in x.iter().zip(&y) {
            assert_eq!(kx, ky);
            assert!(vx == vy, "{name}: tensor {kx} differs after resume");
        }
    }
    // The EMA network and the queue are part of the state.
    let state = tensors(&a.join("pretrain.state.safetensors"));
    assert!(state.iter().any(|(k, _)| k == "queue"));
    assert!(state.iter().any(|(k, _)| k.starts_with("ema.encoder.")));
    assert!(state
        .iter()
        .any(|(k, _)| k.starts_with("lars.velocity.encoder.")));
}

#[test]
fn resuming_with_another_seed_is_refused() {
    let dir = scratch("seed");
    let mut env = Env::open(tiny(&dir), false).unwrap();
    env.stop_after_epochs = Some(1);
    pretrain::run(&mut env).unwrap();
    let mut cfg = tiny(&dir);
    cfg.seed = 7;
    let e = pretrain::run(&mut Env::open(cfg, true).unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("--seed 0, not 7"), "{e}");
}

#[test]
fn label_subsets_are_balanced_deterministic_and_saved() {
    let dir = scratch("labels");
    let mut cfg = tiny(&dir);
    cfg.synthetic_train = 200;
    cfg.finetune.labels_per_class = Some(3);
    let env = Env::open(cfg.clone(), false).unwrap();
    let idx = finetune::labelled_indices(&env).unwrap();
    assert_eq!(idx.len(), 30);
    let mut per_class = [0usize; 10];
    for &i in &idx {
        per_class[env.splits.train.label(i)] += 1;
    }
    assert_eq!(per_class, [3; 10]);
    assert_eq!(
        finetune::labelled_indices(&env).unwrap(),
        idx,
        "same seed, same subset"
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("labels.json")).unwrap()).unwrap();
    assert_eq!(saved["count"], 30);
    cfg.seed = 1;
    let other = finetune::labelled_indices(&Env::open(cfg, false).unwrap()).unwrap();
    assert_ne!(other, idx, "another seed picks other images");
}

#[test]
fn pipeline_writes_checkpoints_metrics_summary_and_plot() {
    let dir = scratch("pipeline");
    let mut cfg = tiny(&dir);
    cfg.pretrain.epochs = 1;
    cfg.finetune.epochs = 1;
    cfg.distill.epochs = 1;
    cfg.linear_eval.epochs = 1;
    cfg.distill.batch_size = 16;
    let results = train::pipeline(&mut Env::open(cfg, false).unwrap()).unwrap();
    let stages: Vec<&str> = results.iter().map(|r| r.stage).collect();
    assert_eq!(
        stages,
        [
            "pretrain",
            "finetune",
            "distill",
            "linear-eval",
            "supervised"
        ]
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    for s in ["finetune", "distill", "linear-eval", "supervised"] {
        let t = summary[s]["top1"]
            .as_f64()
            .unwrap_or_else(|| panic!("{s} has no top1"));
        assert!((0.0..=1.0).contains(&t));
        assert!(dir.join(format!("{s}.safetensors")).exists());
    }
    let lines = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    for key in ["stage", "epoch", "step", "loss", "lr", "images_per_s"] {
        assert!(
            first.get(key).is_some(),
            "metrics line lacks {key}: {first}"
        );
    }
    assert!(lines.lines().any(|l| l.contains("\"top1\"")));
    let png = std::fs::read(dir.join("metrics.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

#[test]
fn a_stage_shorter_than_log_every_still_logs_its_last_step() {
    let dir = scratch("short_stage");
    let mut cfg = tiny(&dir);
    cfg.log_every = 1000;
    let mut env = Env::open(cfg, false).unwrap();
    finetune::run(&mut env, "finetune", None).unwrap();
    drop(env);
    let lines = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["stage"] == "finetune" && v.get("images_per_s").is_some())
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    // 24 labelled images (half of 48) in batches of 8, 2 epochs: 6 steps, the last logged.
    assert_eq!(steps, vec![6], "{lines}");
}

#[test]
fn recomputing_activations_trains_to_the_same_weights() {
    let (a, b) = (scratch("kept"), scratch("recomputed"));
    let mut cfg = tiny(&a);
    cfg.pretrain.epochs = 1;
    cfg.finetune.epochs = 1;
    let run = |cfg: Config| {
        let out = cfg.out.clone();
        let mut env = Env::open(cfg, false).unwrap();
        pretrain::run(&mut env).unwrap();
        finetune::run(
            &mut env,
            "finetune",
            Some(&out.join("pretrain.safetensors")),
        )
        .unwrap();
    };
    run(cfg.clone());
    cfg.out = b.to_path_buf();
    cfg.recompute = true;
    run(cfg);
    for name in ["pretrain.safetensors", "finetune.safetensors"] {
        assert!(
            tensors(&a.join(name)) == tensors(&b.join(name)),
            "{name} differs"
        );
    }
}
