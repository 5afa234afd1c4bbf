//! `--device cuda-emu` alone (no `SIMCLR_CUDA=emu`) runs a training command on the emulated
//! device: nothing may open the real driver before the device is chosen (counting GPUs for a
//! launcher's ranks did, and the run stopped with "this process already uses cuda"). The run
//! also prints the summary of cuDNN's choices after its first epoch: one step's convolutions,
//! each call counted; `bench` prints the same step's.
#![cfg(feature = "cuda-emu")]

#[path = "support/mod.rs"]
mod support;

use std::process::Command;

/// The choice summary `pretrain` prints on the emulated device, for an epoch of `steps` steps.
fn pretrain_summary(steps: usize) -> String {
    let out = support::scratch::scratch("emu_device_flag", &format!("pretrain-{steps}"));
    let cache = tempfile::tempdir().unwrap();
    let run = Command::new(support::cli::bin())
        .args([
            "pretrain",
            "--device",
            "cuda-emu",
            "--model",
            "r18_0.25x_sk1",
        ])
        .args(["--synthetic-train", &(16 * steps).to_string()])
        .args(["--synthetic-test", "8", "--image-size", "16"])
        .args(["--batch-size", "16", "--epochs", "1", "--knn-every", "0"])
        .arg("--out")
        .arg(&*out)
        .env_remove("SIMCLR_CUDA")
        .env("SIMCLR_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    let (so, err) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(run.status.success(), "stdout: {so}\nstderr: {err}");
    let summary = so
        .lines()
        .find(|l| l.starts_with("pretrain: cuDNN algorithms (--conv-algorithms deterministic): "))
        .unwrap_or_else(|| panic!("no summary of cuDNN's choices: {so}"));
    assert!(
        summary.contains("passed over a faster nondeterministic algorithm")
            && summary.ends_with("(the first step's convolutions)"),
        "{summary}"
    );
    summary.to_string()
}

/// The number just before `what` in `summary`.
fn number_before(summary: &str, what: &str) -> usize {
    let head = &summary[..summary
        .find(what)
        .unwrap_or_else(|| panic!("{what}: {summary}"))];
    head.rsplit(' ').next().unwrap().parse().unwrap()
}

/// The choice summary `bench` prints on the emulated device: the same step as `pretrain`'s,
/// timed after a warm-up, as a captured graph's replays.
fn bench_summary() -> String {
    let cache = tempfile::tempdir().unwrap();
    let run = Command::new(support::cli::bin())
        .args(["bench", "--device", "cuda-emu", "--model", "r18_0.25x_sk1"])
        .args([
            "--batch-size",
            "8",
            "--image-size",
            "16",
            "--warmup",
            "1",
            "--steps",
            "2",
        ])
        .arg("--no-plan")
        .env_remove("SIMCLR_CUDA")
        .env("SIMCLR_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    let (so, err) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(run.status.success(), "stdout: {so}\nstderr: {err}");
    let bench = so
        .lines()
        .find(|l| l.starts_with("cuDNN algorithms (--conv-algorithms deterministic): "))
        .unwrap_or_else(|| panic!("bench printed no summary of cuDNN's choices: {so}"));
    assert!(
        bench.ends_with("(the first step's convolutions)"),
        "{bench}"
    );
    bench.to_string()
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
