//! Issue 14, wrong answers reported as success: accuracy of diverged or constant models,
//! non-finite losses and checkpoints, the learning rate of a clamped batch, empty splits, sizes
//! checked before allocating, untrusted checkpoint metadata and clear refusals. Each test runs
//! the binary on tiny synthetic data.

use std::path::Path;
use std::process::Command;

#[path = "support/mod.rs"]
mod support;
use simclr::params::ParamStore;
use simclr::train::model::{self, Classifier, ModelMeta};
use support::scratch::Scratch;

/// Exit code, stdout and stderr; never a panic.
fn simclr(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_simclr"))
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(!err.contains("memory allocation"), "abort: {err}");
    let so = String::from_utf8_lossy(&out.stdout).to_string();
    (out.status.code().unwrap_or(-1), so, err)
}

fn scratch(name: &str) -> Scratch {
    support::scratch::scratch("robust", name)
}

/// `cmd --out OUT` on 40 training and 20 test images, batch 8, one epoch; `more` adds flags
/// or replaces these.
fn tiny(cmd: &str, out: &Path, more: &[&str]) -> (i32, String, String) {
    let base = [
        ("--device", "cpu"),
        ("--synthetic-train", "40"),
        ("--synthetic-test", "20"),
        ("--epochs", "1"),
        ("--batch-size", "8"),
    ];
    let mut args = vec![cmd, "--out", out.to_str().unwrap()];
    // `eval` trains nothing: it has no epochs or batch size.
    let trains = cmd != "eval";
    for (flag, v) in base {
        if !more.contains(&flag)
            && (trains || !flag.starts_with("--epochs") && flag != "--batch-size")
        {
            args.extend([flag, v]);
        }
    }
    args.extend(more);
    simclr(&args)
}

fn meta(model: &str) -> ModelMeta {
    ModelMeta {
        stage: "finetune".into(),
        model: model.into(),
        image_size: 32,
        in_channels: 3,
        proj_layers: 3,
        proj_dim: 64,
        proj_layer: 1,
        num_classes: 10,
        stem_pool_padding: simclr::nn::StemPoolPadding::Symmetric,
    }
}

/// A classifier checkpoint of r18_0.25x_sk0 (labelled `labelled_as` in its metadata) whose
/// tensors are edited by `edit`.
fn classifier_file(dir: &Path, labelled_as: &str, edit: impl Fn(&str, &mut Vec<f32>)) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let mut store = ParamStore::new(simclr::DType::F32, 0);
    Classifier::new(&mut store, meta("r18_0.25x_sk0")).unwrap();
    for id in store.ids().collect::<Vec<_>>() {
        let t = store.value(id).unwrap();
        let mut v = t.to_vec_f32().unwrap();
        let shape = t.shape().to_vec();
        edit(store.name(id), &mut v);
        let t = simclr::Tensor::from_vec(v, &shape).unwrap();
        store.set_value(id, t).unwrap();
    }
    let path = dir.join("clf.safetensors");
    model::save(&store, &meta(labelled_as), &path).unwrap();
    path.to_str().unwrap().to_string()
}

fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn a_constant_model_scores_zero_not_one_hundred_percent() {
    let out = scratch("constant");
    // Zero classifier: every class scores the same, a tie for every image.
    let ckpt = classifier_file(&out, "r18_0.25x_sk0", |name, v| {
        if name.starts_with("classifier.") {
            v.iter_mut().for_each(|x| *x = 0.0);
        }
    });
    let (code, so, err) = tiny("eval", &out, &["--checkpoint", &ckpt]);
    assert_eq!(code, 0, "{err}");
    assert!(so.contains("top-1 0.00%, top-5 0.00%"), "{so}");
    assert_eq!(summary(&out)["eval"]["top1"], 0.0);
}

#[test]
fn non_finite_and_integer_checkpoints_are_refused() {
    let out = scratch("nanckpt");
    let ckpt = classifier_file(&out, "r18_0.25x_sk0", |name, v| {
        if name == "classifier.weight" {
            v[3] = f32::NAN;
        }
    });
    let (code, _, err) = tiny("eval", &out, &["--checkpoint", &ckpt]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("tensor 'classifier.weight' holds 1 non-finite values"),
        "{err}"
    );
    assert!(!out.join("summary.json").exists());
    // An integer tensor where a weight is expected.
    let path = out.join("int.safetensors");
    let bytes = [0u8; 8];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![1], &bytes).unwrap();
    std::fs::write(
        &path,
        safetensors::serialize([("encoder.stem.weight", view)], None).unwrap(),
    )
    .unwrap();
    let (code, _, err) = simclr(&[
        "info",
        "--model",
        "r18_1x_sk0",
        "--checkpoint",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn a_diverging_run_stops_with_an_error_and_keeps_its_last_finite_state() {
    let out = scratch("diverge");
    let (code, _, err) = tiny("pretrain", &out, &["--lr", "1e6", "--epochs", "6"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("training diverged: pretrain:"), "{err}");
    assert!(err.contains("step"), "{err}");
    assert!(!out.join("pretrain.safetensors").exists());
    // Whatever state it kept is finite, so a resume does not carry NaN on.
    let state = out.join("pretrain.state.safetensors");
    if state.exists() {
        let bytes = std::fs::read(&state).unwrap();
        simclr::checkpoint::read_weights(&bytes, &state).unwrap();
    }
}

#[test]
fn a_nan_weight_decay_is_refused_before_training() {
    let out = scratch("wdnan");
    std::fs::create_dir_all(&out).unwrap();
    let cfg = out.join("c.toml");
    std::fs::write(&cfg, "[pretrain]\nweight_decay = nan\n").unwrap();
    let (code, _, err) = tiny("pretrain", &out, &["--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("pretrain.weight_decay = NaN: must be a finite number >= 0"),
        "{err}"
    );
}

#[test]
fn the_learning_rate_follows_the_batch_actually_run() {
    let out = scratch("clamp");
    let (code, so, err) = tiny("pretrain", &out, &["--batch-size", "18446744073709551615"]);
    assert_eq!(code, 0, "{err}");
    assert!(so.contains("using 40"), "{so}");
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let peak = 0.3 * 40f64.sqrt();
    let mut steps = 0;
    for line in metrics.lines() {
        // Step records carry the lr; the kNN monitor's records do not.
        let Some(lr) = serde_json::from_str::<serde_json::Value>(line).unwrap()["lr"].as_f64()
        else {
            continue;
        };
        assert!(lr <= peak + 1e-9, "lr {lr} above {peak}");
        steps += 1;
    }
    assert!(steps > 0, "no step records in {metrics}");
    // One image has no negatives.
    let (code, _, err) = tiny("pretrain", &out, &["--synthetic-train", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("at least 2 training images"), "{err}");
    // A step count that overflows.
    let (code, _, err) = tiny("pretrain", &out, &["--epochs", "4611686018427387904"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--epochs 4611686018427387904"), "{err}");
}

#[test]
fn empty_splits_are_refused() {
    let out = scratch("empty");
    let (code, _, err) = tiny("supervised", &out, &["--synthetic-test", "0"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("synthetic_test (--synthetic-test) = 0"),
        "{err}"
    );
    assert!(!out.join("supervised.safetensors").exists());
    let (code, _, err) = tiny("pretrain", &out, &["--synthetic-train", "0"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("synthetic_train (--synthetic-train) = 0") && !err.contains("index"),
        "{err}"
    );
}

#[test]
fn sizes_are_checked_before_allocating() {
    let out = scratch("sizes");
    for (flag, v) in [
        ("--queue-size", "4611686018427387904"),
        ("--queue-size", "100000000000"),
        ("--synthetic-train", "100000000000"),
        // The head's last layer: an allocation this size aborted the process (exit 134).
        ("--proj-dim", "4294967296"),
    ] {
        let (code, _, err) = tiny("pretrain", &out, &[flag, v]);
        assert_eq!(code, 1, "{flag} {v}: {err}");
        assert!(err.contains(flag) && err.contains(v), "{err}");
    }
    // A labelled subset larger than the data: refused by its class count, not allocated for
    // (exit 134 before).
    let (code, _, err) = tiny("supervised", &out, &["--labels-per-class", "4294967296"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--labels-per-class 4294967296: class 0 has only"),
        "{err}"
    );
    std::fs::create_dir_all(&out).unwrap();
    let cfg = out.join("c.toml");
    std::fs::write(&cfg, "log_every = 0\n").unwrap();
    let (code, _, err) = tiny("pretrain", &out, &["--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("log_every = 0: must be at least 1"), "{err}");
}

#[test]
fn refusals_name_the_flag_the_value_and_what_is_allowed() {
    let out = scratch("messages");
    let (_, _, err) = tiny("pretrain", &out, &["--lr=-1"]);
    assert!(
        err.contains("pretrain.lr (--lr) = -1: must be a finite number > 0"),
        "{err}"
    );
    let (_, _, err) = tiny("pretrain", &out, &["--temperature", "NaN"]);
    assert!(
        err.contains("pretrain.temperature (--temperature) = NaN") && !err.contains("ntxent"),
        "{err}"
    );
    std::fs::create_dir_all(&out).unwrap();
    let cfg = out.join("c.toml");
    for (toml, want) in [
        ("[pretrain]\nproj_dim = 0\n", "pretrain.proj_dim = 0"),
        (
            "[pretrain]\nema_momentum = 1.0\n",
            "pretrain.ema_momentum = 1",
        ),
    ] {
        std::fs::write(&cfg, toml).unwrap();
        let (code, _, err) = tiny("pretrain", &out, &["--config", cfg.to_str().unwrap()]);
        assert_eq!(code, 1);
        assert!(err.contains(want) && !err.contains("--ema"), "{err}");
    }
}

/// `--conv-algorithms` takes deterministic or fastest, from the flag or the key; fastest is
/// refused on the CPU (nothing to choose there), before any output is written.
#[test]
fn conv_algorithms_are_named_values_and_fastest_needs_cudnn() {
    let out = scratch("conv_algorithms");
    let (code, _, err) = tiny("pretrain", &out, &["--conv-algorithms", "fast"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "conv_algorithms (--conv-algorithms) is \"fast\"; allowed: deterministic, fastest"
        ),
        "{err}"
    );
    let (code, _, err) = tiny("pipeline", &out, &["--set", "conv_algorithms=fastest"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--conv-algorithms fastest") && err.contains("--device cuda"),
        "{err}"
    );
    assert!(
        !out.join("config.toml").exists(),
        "a refused run wrote its record"
    );
    let (code, _, err) = simclr(&["bench", "--conv-algorithms", "fastest"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--conv-algorithms fastest"), "{err}");
    // Deterministic is the CPU's own: accepted, and recorded.
    let (code, _, err) = tiny("pretrain", &out, &["--conv-algorithms", "deterministic"]);
    assert_eq!(code, 0, "{err}");
    let record = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(
        record.contains("conv_algorithms = \"deterministic\""),
        "{record}"
    );
}

/// Intervals become a `Duration`, which panicked on 1e99 or inf seconds (exit 101) before
/// these were range-checked.
#[test]
fn intervals_beyond_a_duration_are_refused_not_a_panic() {
    let out = scratch("intervals");
    for v in ["1e99", "inf", "-1", "NaN"] {
        let (code, _, err) = tiny("pretrain", &out, &[&format!("--progress-every={v}")]);
        assert_eq!(code, 1, "--progress-every {v}: {err}");
        assert!(
            err.contains("progress_every (--progress-every) =")
                && err.contains("must be a number of seconds in [0, 1e9]"),
            "{err}"
        );
        if v == "1e99" {
            assert!(err.contains("= 1e99:"), "{err}");
        }
    }
    for v in ["1e99", "18446744073709551616", "inf", "0"] {
        let (code, _, err) = tiny("pretrain", &out, &[&format!("--dist-timeout-s={v}")]);
        assert_eq!(code, 1, "--dist-timeout-s {v}: {err}");
        assert!(
            err.contains("--dist-timeout-s must be a positive number of seconds, at most 1e9"),
            "{err}"
        );
        if v == "1e99" {
            assert!(err.contains("got 1e99"), "{err}");
        }
    }
}

#[test]
fn info_accepts_the_trainers_own_checkpoints() {
    let out = scratch("info");
    let m = ["--model", "r18_0.25x_sk0"];
    assert_eq!(tiny("pretrain", &out, &m).0, 0);
    let (code, _, err) = tiny(
        "finetune",
        &out,
        &[&m[..], &["--labels-per-class", "2"]].concat(),
    );
    assert_eq!(code, 0, "{err}");
    for name in ["pretrain", "finetune"] {
        let p = out.join(format!("{name}.safetensors"));
        let (code, so, err) = simclr(&["info", "--brief", "--checkpoint", p.to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {err}");
        assert!(so.contains("matches a r18_0.25x_sk0"), "{so}");
    }
}

#[test]
fn checkpoint_metadata_is_checked_against_the_header_before_building() {
    let out = scratch("meta");
    let ckpt = classifier_file(&out, "r200_4x_sk1", |_, _| {});
    let t = std::time::Instant::now();
    let (code, _, err) = tiny("eval", &out, &["--checkpoint", &ckpt]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("its metadata says r200_4x_sk1"), "{err}");
    assert!(t.elapsed().as_secs() < 20, "took {:?}", t.elapsed());
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    // A pipe whose read end is closed before the trainer starts: its first write meets a
    // closed pipe, as `simclr info | head -1` does once head has its line.
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    let out = Command::new(env!("CARGO_BIN_EXE_simclr"))
        .args(["info", "--model", "r18_1x_sk0"])
        .stdout(Stdio::from(write))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?}: {err}",
        out.status
    );
}
