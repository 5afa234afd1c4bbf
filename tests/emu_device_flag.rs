//! `--device cuda-emu` alone (no `SIMCLR_CUDA=emu`) runs a training command on the emulated
//! device: nothing may open the real driver before the device is chosen (counting GPUs for a
//! launcher's ranks did, and the run stopped with "this process already uses cuda"). The run
//! also prints the summary of cuDNN's choices after its first epoch: one step's convolutions,
//! each call counted; `bench` prints the same step's.
#![cfg(feature = "cuda-emu")]

#[path = "support/mod.rs"]
mod support;

use std::process::Command;

/// The line starting `prefix` that `simclr ARGS` prints on the emulated device (chosen by the
/// flag alone), with a cache of its own: the summary of cuDNN's choices, of one step.
fn summary_line(args: &[&str], prefix: &str) -> String {
    let cache = tempfile::tempdir().unwrap();
    let run = Command::new(support::cli::bin())
        .args(args)
        .args(["--device", "cuda-emu", "--model", "r18_0.25x_sk1"])
        .env_remove("SIMCLR_CUDA")
        .env("SIMCLR_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    let (so, err) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(run.status.success(), "stdout: {so}\nstderr: {err}");
    let line = so
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no summary of cuDNN's choices: {so}"));
    assert!(
        line.contains("passed over a faster nondeterministic algorithm")
            && line.ends_with("(the first step's convolutions)"),
        "{line}"
    );
    line.to_string()
}

const SUMMARY: &str = "cuDNN algorithms (--conv-algorithms deterministic): ";

/// `pretrain`'s summary after an epoch of `steps` steps.
fn pretrain_summary(steps: usize) -> String {
    let out = support::scratch::scratch("emu_device_flag", &format!("pretrain-{steps}"));
    let train = (16 * steps).to_string();
    let args = [
        "pretrain",
        "--synthetic-train",
        &train,
        "--synthetic-test",
        "8",
        "--image-size",
        "16",
        "--batch-size",
        "16",
        "--epochs",
        "1",
        "--knn-every",
        "0",
        "--out",
        out.to_str().unwrap(),
    ];
    summary_line(&args, &format!("pretrain: {SUMMARY}"))
}

/// `bench`'s summary: the same step, timed after a warm-up, as a captured graph's replays.
fn bench_summary() -> String {
    let args = [
        "bench",
        "--batch-size",
        "8",
        "--image-size",
        "16",
        "--warmup",
        "1",
        "--steps",
        "2",
        "--no-plan",
    ];
    summary_line(&args, SUMMARY)
}

/// The number just before `what` in `summary`.
fn number_before(summary: &str, what: &str) -> usize {
    let head = &summary[..summary
        .find(what)
        .unwrap_or_else(|| panic!("{what}: {summary}"))];
    head.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn pretrain_runs_on_the_emulated_device_chosen_by_the_flag_alone() {
    // The three runs at once: they are independent processes.
    let (one, two, bench) = std::thread::scope(|s| {
        let one = s.spawn(|| pretrain_summary(1));
        let two = s.spawn(|| pretrain_summary(2));
        let bench = s.spawn(bench_summary);
        (one.join(), two.join(), bench.join())
    });
    let (one, two, bench) = (one.unwrap(), two.unwrap(), bench.unwrap());
    let calls = |s: &str| number_before(s, " calls");
    let directions = number_before(&one, " convolution directions chosen");
    // r18 repeats block geometries: one step runs more calls than it has distinct directions.
    assert!(directions < calls(&one), "{one}");
    // An epoch of two steps reports the first step's calls, not the epoch's.
    assert_eq!(
        calls(&two),
        calls(&one),
        "one step: {one}\ntwo steps: {two}"
    );

    // `bench` reports the same step's calls.
    assert_eq!(
        calls(&bench),
        calls(&one),
        "bench: {bench}\npretrain: {one}"
    );
}
