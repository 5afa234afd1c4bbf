//! `simclr pretrain --augment-on` and `--decode-on`: `gpu` without the GPU path stops before
//! training with an error naming the flag and the device (the runs on a GPU, or the emulated
//! device, are in tests/cuda_decode_on_cli.rs).

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
