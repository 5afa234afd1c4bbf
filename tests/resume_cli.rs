//! Issue 14, lost or mixed work: `--resume` refuses changed settings and keeps a finished
//! stage's results, one trainer per `--out`, no leftover temporary files, no duplicated metrics.

use std::path::Path;
use std::process::Command;

#[path = "support/mod.rs"]
mod support;
use support::scratch::Scratch;

fn simclr(args: &[String]) -> (i32, String, String) {
    support::cli::simclr(env!("CARGO_BIN_EXE_simclr"), args)
}

fn scratch(name: &str) -> Scratch {
    support::scratch::scratch("resume", name)
}

/// Pretraining on 40 images, batch 8 (5 steps an epoch), 2 epochs, with `more` appended.
fn pretrain(out: &Path, more: &[&str]) -> (i32, String, String) {
    simclr(&support::tiny_run::args("pretrain", out, 2, more))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn a_resume_that_changes_the_settings_is_refused() {
    let out = scratch("changed");
    assert_eq!(pretrain(&out, &["--stop-after-epochs", "1"]).0, 0);
    let (code, _, err) = pretrain(&out, &["--resume", "--lr", "0.5", "--temperature", "0.3"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("pretrain.lr was 0.3, now 0.5"), "{err}");
    let default_tau = simclr::train::config::Config::default()
        .pretrain
        .temperature;
    assert!(
        err.contains(&format!("pretrain.temperature was {default_tau}, now 0.3")),
        "{err}"
    );
    let (code, _, err) = pretrain(&out, &["--resume", "--queue-size", "16"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("pretrain.queue_size was 0, now 16"), "{err}");
    // The same settings continue.
    let (code, _, err) = pretrain(&out, &["--resume"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn resuming_a_finished_stage_keeps_its_results() {
    let out = scratch("finished");
    assert_eq!(pretrain(&out, &[]).0, 0);
    let before = read(&out.join("summary.json"));
    let (code, so, err) = pretrain(&out, &["--resume"]);
    assert_eq!(code, 0, "{err}");
    assert!(so.contains("already complete"), "{so}");
    assert_eq!(read(&out.join("summary.json")), before);
    let s: serde_json::Value = serde_json::from_str(&before).unwrap();
    assert!(s["pretrain"]["loss"].is_f64(), "{before}");
}

#[test]
fn a_second_trainer_on_the_same_out_is_refused_naming_the_holder() {
    let out = scratch("lock");
    std::fs::create_dir_all(&out).unwrap();
    let host = read(Path::new("/proc/sys/kernel/hostname"));
    // A live holder: this test process.
    let lock = out.join(".simclr.lock");
    let me = std::process::id();
    std::fs::write(&lock, format!("{me} {} 1764547200 0\n", host.trim())).unwrap();
    let (code, _, err) = pretrain(&out, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "in use by another trainer: pid {me} on host {}",
            host.trim()
        )),
        "{err}"
    );
    assert!(err.contains("2025-12-01 00:00:00 UTC"), "{err}");
    assert!(!out.join("metrics.jsonl").exists());
    // A dead holder's lock is taken over with a warning, and released at the end.
    std::fs::write(&lock, format!("4194000 {} 1764547200 0\n", host.trim())).unwrap();
    let (code, _, err) = pretrain(&out, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("taking over the lock of pid 4194000"), "{err}");
    assert!(!lock.exists());
}

#[test]
fn two_trainers_started_together_one_refuses() {
    let out = scratch("race");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_simclr"))
            .args(["pretrain", "--device", "cpu", "--synthetic-train", "40"])
            .args([
                "--synthetic-test",
                "20",
                "--batch-size",
                "8",
                "--epochs",
                "3",
            ])
            .arg("--out")
            .arg(&*out)
            .output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    let codes = [a.status.code(), b.status.code()];
    assert!(
        codes.contains(&Some(0)) && codes.contains(&Some(1)),
        "{codes:?}"
    );
    let loser = if a.status.code() == Some(1) { &a } else { &b };
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(err.contains("in use by another trainer"), "{err}");
}

#[test]
fn leftover_temporary_files_are_removed_and_replayed_steps_not_duplicated() {
    let out = scratch("tmp");
    assert_eq!(pretrain(&out, &["--stop-after-epochs", "1"]).0, 0);
    // A kill during a state write, and during epoch 2 after its step 7 was logged.
    let tmp = out.join(".pretrain.state.safetensors.tmp4194000");
    std::fs::write(&tmp, b"half").unwrap();
    let metrics = out.join("metrics.jsonl");
    let mut m = read(&metrics);
    // As the trainer writes it: run 1's record.
    m.push_str("{\"run_id\":1,\"stage\":\"pretrain\",\"epoch\":1,\"step\":7,\"loss\":1.0}\n");
    std::fs::write(&metrics, m).unwrap();
    let (code, _, err) = pretrain(&out, &["--resume", "--stop-after-epochs", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(!tmp.exists());
    let steps: Vec<u64> = read(&metrics)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        // Step records (the kNN monitor's records carry the step they follow, and no loss).
        .filter(|r| r["stage"] == "pretrain" && r.get("loss").is_some())
        .filter_map(|r| r["step"].as_u64())
        .collect();
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    assert_eq!(*steps.last().unwrap(), 10, "{steps:?}");
}

#[test]
fn a_state_with_non_finite_values_is_not_resumed() {
    let out = scratch("nanstate");
    assert_eq!(pretrain(&out, &["--stop-after-epochs", "1"]).0, 0);
    let state = out.join("pretrain.state.safetensors");
    let meta = simclr::checkpoint::read_metadata(&state).unwrap();
    let mut tensors: Vec<(String, simclr::Tensor)> =
        simclr::checkpoint::read_tensors(&std::fs::read(&state).unwrap(), &state)
            .unwrap()
            .into_iter()
            .collect();
    let (name, t) = tensors
        .iter_mut()
        .find(|(n, _)| n == "param.head.0.linear.weight")
        .unwrap();
    let mut v = t.to_vec_f32().unwrap();
    v[0] = f32::NAN;
    *t = simclr::Tensor::from_vec(v, t.shape()).unwrap();
    let name = name.clone();
    std::fs::write(
        &state,
        simclr::checkpoint::serialize(&tensors, Some(meta)).unwrap(),
    )
    .unwrap();
    let (code, _, err) = pretrain(&out, &["--resume"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("tensor '{name}' holds 1 non-finite")),
        "{err}"
    );
}

#[test]
fn pipeline_resume_keeps_every_finished_stage() {
    let out = scratch("pipeline");
    let args = support::tiny_run::args("pipeline", &out, 1, &["--labels-per-class", "2"]);
    let (code, _, err) = simclr(&args);
    assert_eq!(code, 0, "{err}");
    let before: serde_json::Value = serde_json::from_str(&read(&out.join("summary.json"))).unwrap();
    let mut again = args.clone();
    again.push("--resume".into());
    let (code, _, err) = simclr(&again);
    assert_eq!(code, 0, "{err}");
    let after: serde_json::Value = serde_json::from_str(&read(&out.join("summary.json"))).unwrap();
    for stage in ["pretrain", "finetune", "distill", "supervised"] {
        assert_eq!(before[stage], after[stage], "{stage}");
    }
    assert!(after["pretrain"]["loss"].is_f64());
}
