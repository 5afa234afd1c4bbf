//! `simclr pretrain --augment-on`: `gpu` on a CPU device stops before training with an error
//! naming the flag and the device; on a (possibly emulated) GPU, pretraining on a generated
//! folder of JPEGs and PNGs of mixed sizes runs its epoch through the GPU path.

#[path = "support/tiny_run.rs"]
mod tiny_run;

use std::process::Command;

#[test]
fn augment_on_gpu_without_a_gpu_is_refused_by_name() {
    let out = tempfile::tempdir().unwrap();
    for (value, says) in [
        ("gpu", "--augment-on gpu needs a CUDA device"),
        ("tpu", "'tpu' is not one of: cpu, gpu, auto"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_simclr"))
            .args(tiny_run::args(
                "pretrain",
                out.path(),
                1,
                &["--augment-on", value],
            ))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{err}");
        assert!(err.contains(says), "{err}");
    }
}

#[test]
fn decode_on_gpu_without_the_gpu_augmentation_is_refused_by_name() {
    let out = tempfile::tempdir().unwrap();
    for (value, says) in [
        (
            "gpu",
            "--decode-on gpu decodes into the GPU augmentation's sources",
        ),
        ("fpga", "--decode-on 'fpga' is not one of: cpu, gpu, auto"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_simclr"))
            .args(tiny_run::args(
                "pretrain",
                out.path(),
                1,
                &["--decode-on", value],
            ))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{err}");
        assert!(err.contains(says), "{err}");
    }
}

#[cfg(feature = "cuda")]
#[path = "cuda_common.rs"]
mod common;
#[cfg(feature = "cuda")]
#[path = "support/mixed_folder.rs"]
mod mixed_folder;

#[cfg(feature = "cuda")]
#[test]
fn pretraining_on_a_folder_runs_with_the_augmentation_on_the_gpu() {
    if common::gpu().is_none() {
        return;
    }
    let mut rng = simclr::Rng::new(simclr::testing::fresh_seed(
        "pretraining_on_a_folder_runs_with_the_augmentation_on_the_gpu",
    ));
    let root = tempfile::tempdir().unwrap();
    mixed_folder::mixed_folder(root.path(), 8, (24, 64), &mut rng);
    let out = tempfile::tempdir().unwrap();
    let data = root.path().to_str().unwrap();
    let run = out.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_simclr"))
        .args(["pretrain", "--device", "cuda", "--augment-on", "gpu"])
        .args([
            "--dataset",
            "folder",
            "--data-dir",
            data,
            "--image-size",
            "16",
        ])
        .args([
            "--model",
            "r18_0.25x_sk0",
            "--batch-size",
            "8",
            "--epochs",
            "1",
        ])
        .args(["--knn-every", "0", "--out", run.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{err}\n{said}");
    assert!(said.contains("pretrain epoch 1/1: loss"), "{said}");
    assert!(run.join("pretrain.safetensors").exists(), "{said}");
}
