//! Issue 17, what a run leaves behind: one run id per run in metrics.jsonl (a resume continues
//! its own), config.toml that `--config` loads back to the same run, TensorBoard scalars that
//! match the JSONL, metrics.png from every training command, and progress lines off a terminal.

use serde_json::Value;
use std::path::Path;

#[path = "support/mod.rs"]
mod support;
use support::scratch::Scratch;

fn simclr(args: &[String]) -> (i32, String, String) {
    support::cli::simclr(env!("CARGO_BIN_EXE_simclr"), args)
}

fn scratch(name: &str) -> Scratch {
    support::scratch::scratch("record", name)
}

fn run(cmd: &str, out: &Path, epochs: usize, more: &[&str]) -> (String, String) {
    let (code, so, err) = simclr(&support::tiny_run::args(cmd, out, epochs, more));
    assert_eq!(code, 0, "{cmd}: {err}");
    (so, err)
}

fn records(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// (run id, step) of the step records of `stage`.
fn steps(out: &Path, stage: &str) -> Vec<(u64, u64)> {
    records(out)
        .iter()
        .filter(|r| r["stage"] == stage && r.get("lr").is_some())
        .map(|r| (r["run_id"].as_u64().unwrap(), r["step"].as_u64().unwrap()))
        .collect()
}

#[test]
fn a_rerun_is_a_new_run_and_a_resume_continues_its_own() {
    let out = scratch("runs");
    run("pretrain", &out, 1, &["--log-every", "1"]);
    run(
        "pretrain",
        &out,
        2,
        &["--log-every", "1", "--stop-after-epochs", "1"],
    );
    let (so, _) = run("pretrain", &out, 2, &["--log-every", "1", "--resume"]);
    assert!(so.contains("# simclr run 2 in"), "{so}");
    let s = steps(&out, "pretrain");
    let run1: Vec<u64> = s.iter().filter(|r| r.0 == 1).map(|r| r.1).collect();
    let run2: Vec<u64> = s.iter().filter(|r| r.0 == 2).map(|r| r.1).collect();
    assert_eq!(run1, [1, 2, 3, 4, 5]);
    // The resumed run continued run 2 after its saved step 5, logging nothing twice.
    assert_eq!(run2, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert_eq!(s.len(), 15);
    // TensorBoard: run 2's loss at each of its steps, the same values as the JSONL.
    let tb = out.join("tensorboard/run-2/pretrain");
    let mut tb_loss: Vec<(i64, f32)> = Vec::new();
    for f in std::fs::read_dir(&tb).unwrap() {
        let scalars = simclr::train::tensorboard::read_scalars(&f.unwrap().path()).unwrap();
        tb_loss.extend(scalars.iter().filter(|s| s.1 == "loss").map(|s| (s.0, s.2)));
    }
    tb_loss.sort_by_key(|s| s.0);
    let jsonl: Vec<(i64, f32)> = records(&out)
        .iter()
        .filter(|r| r["run_id"] == 2 && r.get("lr").is_some())
        .map(|r| {
            (
                r["step"].as_i64().unwrap(),
                r["loss"].as_f64().unwrap() as f32,
            )
        })
        .collect();
    // The first process logged steps 1-5, the resumed one 6-10 (after a session start at 6).
    assert_eq!(tb_loss, jsonl);
}

#[test]
fn config_toml_reproduces_the_run() {
    let a = scratch("cfg-a");
    let b = scratch("cfg-b");
    let flags = [
        "--head-depth",
        "2",
        "--warmup",
        "0.2",
        "--weight-decay",
        "0.0001",
        "--ema-momentum",
        "0.99",
        "--color-strength",
        "0.4",
        "--blur",
        "true",
        "--proj-dim",
        "32",
        "--set",
        "pretrain.temperature=0.3",
        "--pretrain.knn_every",
        "0",
    ];
    let (so, _) = run("pretrain", &a, 1, &flags);
    assert!(
        so.contains("pretrain: lr 0.3 (sqrt scaling, batch 8) peaks at 0.8485"),
        "{so}"
    );
    let saved = std::fs::read_to_string(a.join("config.toml")).unwrap();
    let cfg = simclr::train::Config::from_file(&a.join("config.toml")).unwrap();
    assert_eq!((cfg.pretrain.head_depth, cfg.pretrain.proj_dim), (2, 32));
    assert_eq!((cfg.pretrain.warmup, cfg.pretrain.temperature), (0.2, 0.3));
    assert_eq!(
        (cfg.pretrain.color_strength, cfg.pretrain.blur),
        (Some(0.4), Some(true))
    );
    assert_eq!(
        (cfg.pretrain.knn_every, cfg.pretrain.ema_momentum),
        (0, 0.99)
    );
    let cfg_path = a.join("config.toml");
    let args = [
        "pretrain",
        "--config",
        cfg_path.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
    ];
    let (code, _, err) = simclr(&args.map(String::from));
    assert_eq!(code, 0, "{err}");
    let again = std::fs::read_to_string(b.join("config.toml")).unwrap();
    let body = |s: &str, dir: &Path| s.replace(dir.to_str().unwrap(), "OUT");
    assert_eq!(body(&saved, &a), body(&again, &b));
    let loss = |d: &Path| -> Vec<f64> {
        records(d)
            .iter()
            .filter_map(|r| r["loss"].as_f64())
            .collect()
    };
    assert_eq!(
        loss(&a),
        loss(&b),
        "the same configuration trains the same run"
    );
}

#[test]
fn every_training_command_writes_its_plot_and_prints_progress() {
    let out = scratch("plots");
    let png = out.join("metrics.png");
    let quick = ["--progress-every", "0", "--log-every", "1"];
    for (cmd, epochs) in [
        ("pretrain", 1),
        ("finetune", 1),
        ("distill", 1),
        ("linear-eval", 1),
        ("supervised", 1),
    ] {
        let _ = std::fs::remove_file(&png);
        let (_, err) = run(cmd, &out, epochs, &quick);
        let img = image::open(&png).unwrap_or_else(|e| panic!("{cmd}: no metrics.png: {e}"));
        assert!(img.width() >= 400 && img.height() >= 300, "{cmd}");
        // Off a terminal: plain lines with stage, epoch, step, loss, rate and ETA.
        let stage = cmd;
        let line = err
            .lines()
            .find(|l| l.starts_with(&format!("{stage} epoch 1/1 step 1/")))
            .unwrap_or_else(|| panic!("{cmd}: no progress line in {err}"));
        assert!(
            line.contains(" loss ") && line.contains("img/s ETA "),
            "{line}"
        );
    }
    let panels = simclr::train::plot::layout::layout(&records(&out));
    assert_eq!(panels.len(), 7, "5 loss panels, kNN, bars");
    assert_eq!(panels[6].bars.len(), 4);
}
