//! Multi-process data parallelism through the binary under `mpirun` (Open MPI): pretraining and
//! fine-tuning on 2 and 3 CPU processes follow one process on the same global batch, rank 0
//! alone writes, `--resume` continues, and a rank that dies or hangs ends the whole job with an
//! error naming the rank and the collective.
//!
//! Needs `mpirun` on the PATH (Debian: openmpi-bin libopenmpi-dev) and the feature `mpi`.
//! Without mpirun the tests print why and return; with `SIMCLR_REQUIRE_MPI=1` (CI sets it) they
//! fail instead. Without the feature, the one test here checks that a multi-process CPU job is
//! refused with a clear error.

// The comparisons below run only with the feature.
#![cfg_attr(not(feature = "mpi"), allow(dead_code, unused_imports))]

mod support;

use simclr::testing::{relative_error, tolerance};
use simclr::{DType, Tensor};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::mpi::have_mpirun;
use support::scratch::{scratch, Scratch};

const BIN: &str = env!("CARGO_BIN_EXE_simclr");
/// The longest reduction and the depth of the chained ops of the tiny model, as in
/// tests/data_parallel.rs: one step of two runs that sum in different orders agrees within
/// tolerance(F32, K, DEPTH), and the differences of `n` steps add up to at most n times that.
const K: usize = 2048;
const DEPTH: usize = 42;

/// A tiny run: a quarter-width SK ResNet-18 on 48 synthetic 32-px images, pretraining in
/// batches of 16 with a memory queue (6 steps), fine-tuning on 24 labelled images in batches of
/// 10 (4 steps); small rates, so that f32 rounding differences are not amplified by the steps.
const CONFIG: &str = r#"
model = "r18_0.25x_sk1"
image_size = 32
synthetic_train = 48
synthetic_test = 20
device = "cpu"
log_every = 1
workers = 1
[pretrain]
epochs = 2
batch_size = 16
queue_size = 40
lr = 0.003
[finetune]
epochs = 2
batch_size = 10
label_fraction = 0.5
lr = 0.01
[distill]
epochs = 1
batch_size = 12
lr = 0.01
[linear_eval]
epochs = 2
batch_size = 12
lr = 0.01
"#;

fn config(dir: &Scratch) -> String {
    std::fs::create_dir_all(&**dir).unwrap();
    let p = dir.join("run.toml");
    std::fs::write(&p, CONFIG).unwrap();
    p.to_str().unwrap().to_string()
}

/// Runs `cmd` to its end, failing the test if it takes longer than `limit` (a hang).
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// `simclr <args>` on `np` processes (`np == 0`: one process without mpirun), with `env`.
fn simclr(np: usize, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = if np == 0 {
        Command::new(BIN)
    } else {
        let mut c = Command::new("mpirun");
        c.args(["--allow-run-as-root", "--oversubscribe", "-np"])
            .arg(np.to_string());
        for (k, _) in env {
            c.args(["-x", k]);
        }
        c.arg(BIN);
        c
    };
    cmd.args(args).envs(env.iter().copied());
    run_bounded(cmd, Duration::from_secs(600))
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The checkpoint's values, in name order; only the trained tensors (not the BN running
/// statistics) when `trained_only`.
fn tensors(path: &Path, trained_only: bool) -> Vec<f64> {
    let bytes = std::fs::read(path).unwrap();
    let mut v: Vec<(String, Tensor)> = simclr::checkpoint::read_tensors(&bytes, path)
        .unwrap()
        .into_iter()
        .filter(|(n, _)| !(trained_only && n.contains("running")))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.iter()
        .flat_map(|(_, t)| t.to_vec_f64().unwrap())
        .collect()
}

fn weights(path: &Path) -> Vec<f64> {
    tensors(path, false)
}

/// (stage, loss) of every step line of a run's metrics.
fn losses(dir: &Path, stage: &str) -> Vec<f64> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["stage"] == stage && r["lr"].is_number())
        .map(|r| r["loss"].as_f64().unwrap())
        .collect()
}

/// Same number of steps (so one writer: a second would double them), each step's loss and the
/// final weights within `steps` single-step tolerances of the one-process run `one`, and what
/// training changed in the weights within as much of what it changed in `reference` (changes
/// are measured from `init`, the same run at a vanishing rate: a few small steps move the
/// weights far less than the tolerance, so only the change can tell a wrong gradient).
///
/// The reference is `one`; pretraining is also compared with the same data-parallel split run
/// as threads of one process (`--world-size`).
fn follows(what: &str, [init, one, reference, many]: [&Path; 4], stage: &str, steps: usize) {
    follows_in(what, [init, one, reference, many], stage, steps, false)
}

/// [`follows`], leaving the BN running statistics out of the weights when `trained_only`.
fn follows_in(
    what: &str,
    [init, one, reference, many]: [&Path; 4],
    stage: &str,
    steps: usize,
    trained_only: bool,
) {
    let tol = steps as f64 * tolerance(DType::F32, K, DEPTH);
    let (lw, lg) = (losses(one, stage), losses(many, stage));
    assert_eq!(lw.len(), steps, "{what}: one process logged {lw:?}");
    assert_eq!(lg.len(), steps, "{what}: logged {lg:?} (one writer?)");
    for (step, (w, g)) in lw.iter().zip(&lg).enumerate() {
        assert!(
            (w - g).abs() <= tol * w.abs(),
            "{what}: step {step}: loss {g} vs {w}"
        );
    }
    let ckpt = format!("{stage}.safetensors");
    let err = relative_error(
        &tensors(&many.join(&ckpt), trained_only),
        &tensors(&one.join(&ckpt), trained_only),
    );
    eprintln!("{what}: weights differ by {err:.3e} (tolerance {tol:.3e}); losses {lg:?} vs {lw:?}");
    assert!(err <= tol, "{what}: weights differ by {err:e} > {tol:e}");
    let start = tensors(&init.join(&ckpt), true);
    let change = |dir: &Path| -> Vec<f64> {
        let end = tensors(&dir.join(&ckpt), true);
        end.iter().zip(&start).map(|(e, s)| e - s).collect()
    };
    let (cw, cg) = (change(reference), change(many));
    let moved = cw.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = relative_error(&cg, &cw);
    let vs_one = relative_error(&cg, &change(one));
    eprintln!(
        "{what}: training changes differ by {err:.3e} from the reference's (largest change \
         {moved:.3e}), by {vs_one:.3e} from one process's"
    );
    assert!(moved > 0.0, "{what}: the one-process run did not train");
    assert!(
        err <= tol,
        "{what}: training changes differ by {err:e} > {tol:e}"
    );
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// Runs `stage` on `np` processes into `dir`, with `more` arguments.
fn stage(np: usize, dir: &Scratch, stage: &str, more: &[&str]) {
    let cfg = config(dir);
    let mut args = vec![stage, "--config", &cfg, "--out", dir.to_str().unwrap()];
    args.extend(more);
    ok(&simclr(np, &args, &[]), stage);
}

#[cfg(feature = "mpi")]
#[test]
fn every_stage_on_two_and_three_processes_follows_one_process() {
    if !have_mpirun() {
        return;
    }
    // 0: one process, 1: one process at a vanishing rate, 2 and 3: that many processes, 4 and
    // 5: pretraining as 2 and 3 threads of one process.
    let runs: Vec<Scratch> = (0..6).map(|n| scratch("mpi", &format!("run{n}"))).collect();
    let (pre, teacher) = (
        runs[0].join("pretrain.safetensors"),
        runs[0].join("finetune.safetensors"),
    );
    let (pre, teacher) = (pre.to_str().unwrap(), teacher.to_str().unwrap());
    for np in [0, 2, 3, 1] {
        // Run 1 is one process at a vanishing rate: the weights each stage starts from.
        let tiny: &[&str] = if np == 1 { &["--lr", "1e-30"] } else { &[] };
        let procs = if np == 1 { 0 } else { np };
        let dir = &runs[np];
        let with = |more: &[&'static str]| -> Vec<&str> { [more, tiny].concat() };
        stage(procs, dir, "pretrain", &with(&[]));
        // The later stages all start from the one-process checkpoints: each is compared alone.
        stage(
            procs,
            dir,
            "finetune",
            &[&["--pretrained", pre][..], tiny].concat(),
        );
        stage(
            procs,
            dir,
            "distill",
            &[&["--teacher", teacher][..], tiny].concat(),
        );
        stage(
            procs,
            dir,
            "linear-eval",
            &[&["--pretrained", pre][..], tiny].concat(),
        );
        stage(procs, dir, "supervised", &with(&[]));
    }
    stage(0, &runs[4], "pretrain", &["--world-size", "2"]);
    stage(0, &runs[5], "pretrain", &["--world-size", "3"]);
    for np in [2, 3] {
        let what = format!("{np} processes");
        let dirs: [&Path; 4] = [&runs[1], &runs[0], &runs[0], &runs[np]];
        let threads: [&Path; 4] = [&runs[1], &runs[0], &runs[np + 2], &runs[np]];
        follows(&format!("{what}, pretraining"), dirs, "pretrain", 6);
        follows(
            &format!("{what}, pretraining vs threads"),
            threads,
            "pretrain",
            6,
        );
        follows(&format!("{what}, fine-tuning"), dirs, "finetune", 4);
        follows(&format!("{what}, supervised"), dirs, "supervised", 4);
        follows(&format!("{what}, distillation"), dirs, "distill", 4);
        follows(
            &format!("{what}, linear evaluation"),
            dirs,
            "linear-eval",
            8,
        );
        let many = &runs[np];
        let s = summary(many);
        for stage in [
            "pretrain",
            "finetune",
            "supervised",
            "distill",
            "linear-eval",
        ] {
            assert_eq!(s[stage]["distributed"]["world_size"], np, "{s}");
            assert_eq!(
                s[stage]["distributed"]["launcher"], "mpirun (Open MPI)",
                "{s}"
            );
        }
    }
    assert_eq!(
        summary(&runs[0])["pretrain"]["distributed"]["world_size"],
        1
    );
}

/// With `--micro-batch 4` (images, so micro-batches of 8 view rows), each of 2 ranks
/// micro-batches its 16 rows [a_r; b_r] as {a_r} and {b_r}: the groups one process makes of its
/// 32 rows, so BN sees the same statistics and the
/// steps are one process's. The BN running statistics are rank 0's (it folded only its own
/// micro-batches), so they are left out of the weights.
#[cfg(feature = "mpi")]
#[test]
fn micro_batches_on_two_processes_follow_one_process() {
    if !have_mpirun() {
        return;
    }
    let runs: Vec<Scratch> = (0..3)
        .map(|n| scratch("mpi", &format!("micro{n}")))
        .collect();
    stage(0, &runs[0], "pretrain", &["--micro-batch", "4"]);
    stage(
        0,
        &runs[1],
        "pretrain",
        &["--micro-batch", "4", "--lr", "1e-30"],
    );
    stage(2, &runs[2], "pretrain", &["--micro-batch", "4"]);
    let dirs: [&Path; 4] = [&runs[1], &runs[0], &runs[0], &runs[2]];
    follows_in("2 processes, micro-batches", dirs, "pretrain", 6, true);
}

#[cfg(feature = "mpi")]
#[test]
fn a_multi_process_run_resumes_bit_for_bit() {
    if !have_mpirun() {
        return;
    }
    let (whole, split) = (scratch("mpi", "whole"), scratch("mpi", "split"));
    stage(2, &whole, "pretrain", &[]);
    stage(2, &split, "pretrain", &["--stop-after-epochs", "1"]);
    assert!(!split.join("pretrain.safetensors").exists());
    stage(2, &split, "pretrain", &["--resume"]);
    let (a, b) = (
        weights(&whole.join("pretrain.safetensors")),
        weights(&split.join("pretrain.safetensors")),
    );
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert_eq!(losses(&whole, "pretrain"), losses(&split, "pretrain"));
}

/// A rank that `fault`s before step 2 ends the 2-process job, non-zero, well within the limit.
#[cfg(feature = "mpi")]
fn faulty_job(fault: &str) -> String {
    let dir = scratch("mpi", fault);
    let cfg = config(&dir);
    let args = [
        "pretrain",
        "--config",
        &cfg,
        "--out",
        dir.to_str().unwrap(),
        "--dist-timeout-s",
        "3",
    ];
    let spec = format!("1:2:{fault}");
    let t0 = Instant::now();
    let out = simclr(2, &args, &[("SIMCLR_TEST_FAULT", &spec)]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{fault}: the job succeeded: {text}");
    assert!(t0.elapsed() < Duration::from_secs(120), "{fault}: {text}");
    assert!(text.contains("planted fault before step 2"), "{text}");
    text
}

#[cfg(feature = "mpi")]
#[test]
fn a_hung_rank_ends_the_job_with_the_rank_and_the_collective() {
    if !have_mpirun() {
        return;
    }
    let text = faulty_job("hang");
    assert!(
        text.contains("rank 0 of 2: all_gather (sizes) (collective #")
            && text.contains("did not complete within 3.0 s (--dist-timeout-s)"),
        "{text}"
    );
}

#[cfg(feature = "mpi")]
#[test]
fn a_killed_rank_ends_the_job_naming_it() {
    if !have_mpirun() {
        return;
    }
    let text = faulty_job("kill");
    // mpirun names the rank that died; the others are ended with it.
    assert!(
        text.contains("process rank 1") && text.contains("signal 9"),
        "{text}"
    );
}

#[cfg(not(feature = "mpi"))]
#[test]
fn without_the_mpi_feature_a_cpu_job_of_several_processes_is_refused() {
    if !have_mpirun() {
        return;
    }
    let dir = scratch("mpi", "nompi");
    let cfg = config(&dir);
    let out = simclr(
        2,
        &["pretrain", "--config", &cfg, "--out", dir.to_str().unwrap()],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("build with --features mpi"), "{err}");
}

/// `simclr pretrain` as rank 0 of a torchrun job of 2 (no other rank exists: each case must be
/// refused before any collective), with `more` arguments; returns stderr.
fn refused_as_torchrun_rank(more: &[&str]) -> String {
    let dir = scratch("mpi", "refused");
    let cfg = config(&dir);
    let mut args = vec!["pretrain", "--config", &cfg, "--out", dir.to_str().unwrap()];
    args.extend(more);
    let mut cmd = Command::new(BIN);
    cmd.args(&args)
        .envs([("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")]);
    let out = run_bounded(cmd, Duration::from_secs(120));
    assert!(!out.status.success(), "{more:?} was accepted");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn settings_a_multi_process_job_cannot_run_are_refused_by_name() {
    let e = refused_as_torchrun_rank(&["--world-size", "2"]);
    assert!(
        e.contains("--world-size 2 runs ranks as threads") && e.contains("torchrun"),
        "{e}"
    );
    let e = refused_as_torchrun_rank(&["--dist-timeout-s", "0"]);
    assert!(
        e.contains("--dist-timeout-s must be a positive number"),
        "{e}"
    );
    // CPU ranks need MPI: without the feature the build says so; with it, MPI started outside
    // mpirun is a world of one, which does not match torchrun's world of 2.
    let e = refused_as_torchrun_rank(&[]);
    let want = if cfg!(feature = "mpi") {
        "MPI sees rank 0 of 1"
    } else {
        "build with --features mpi"
    };
    assert!(e.contains(want), "{e}");
}

#[test]
fn malformed_launcher_variables_are_refused_by_name() {
    let dir = scratch("mpi", "malformed");
    let cfg = config(&dir);
    let mut cmd = Command::new(BIN);
    cmd.args(["pretrain", "--config", &cfg, "--out", dir.to_str().unwrap()])
        .envs([("SLURM_PROCID", "3"), ("SLURM_NTASKS", "2")]);
    let out = run_bounded(cmd, Duration::from_secs(60));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(e.contains("SLURM_PROCID=\"3\" is not valid"), "{e}");
    assert!(!dir.join("metrics.jsonl").exists(), "wrote before refusing");
}
