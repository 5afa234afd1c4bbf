//! `simclr pretrain --augment-on`: `gpu` on a CPU device stops before training with an error
//! naming the flag and the device; on a (possibly emulated) GPU, pretraining on a generated
//! folder of JPEGs and PNGs of mixed sizes runs its epoch through the GPU path.

#[path = "support/tiny_run.rs"]
mod tiny_run;

use std::process::Command;

#[test]
fn augment_on_gpu_without_a_gpu_is_refused_by_name() {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_simclr"))
        .args(tiny_run::args(
            "pretrain",
            out.path(),
            1,
            &["--augment-on", "gpu"],
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("--augment-on gpu needs a CUDA device"),
        "{err}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_simclr"))
        .args(tiny_run::args(
            "pretrain",
            out.path(),
            1,
            &["--augment-on", "tpu"],
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("'tpu' is not one of: cpu, gpu, auto"), "{err}");
}

#[cfg(feature = "cuda")]
#[path = "cuda_common.rs"]
mod common;

#[cfg(feature = "cuda")]
#[test]
fn pretraining_on_a_folder_runs_with_the_augmentation_on_the_gpu() {
    use simclr::data::stream::synth::{write_split, SynthFolder};
    if common::gpu().is_none() {
        return;
    }
    let mut rng = simclr::Rng::new(simclr::testing::fresh_seed(
        "pretraining_on_a_folder_runs_with_the_augmentation_on_the_gpu",
    ));
    let root = tempfile::tempdir().unwrap();
    let spec = SynthFolder {
        classes: 2,
        per_class: 8,
        sides: (24, 64),
        png_every: 3,
        gray_every: 4,
        exif_every: 5,
        quality: 85,
    };
    write_split(root.path(), "train", &spec, &mut rng).unwrap();
    write_split(root.path(), "val", &spec, &mut rng).unwrap();
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
