//! `--device cuda-emu` alone (no `SIMCLR_CUDA=emu`) runs a training command on the emulated
//! device: nothing may open the real driver before the device is chosen (counting GPUs for a
//! launcher's ranks did, and the run stopped with "this process already uses cuda"). The run
//! also prints the summary of cuDNN's choices after its first epoch.
#![cfg(feature = "cuda-emu")]

#[path = "support/mod.rs"]
mod support;

use std::process::Command;

#[test]
fn pretrain_runs_on_the_emulated_device_chosen_by_the_flag_alone() {
    let out = support::scratch::scratch("emu_device_flag", "pretrain");
    let cache = tempfile::tempdir().unwrap();
    let run = Command::new(support::cli::bin())
        .args([
            "pretrain",
            "--device",
            "cuda-emu",
            "--model",
            "r18_0.25x_sk1",
        ])
        .args([
            "--synthetic-train",
            "32",
            "--synthetic-test",
            "8",
            "--image-size",
            "16",
        ])
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
        summary.contains("passed over a faster nondeterministic algorithm"),
        "{summary}"
    );
}
