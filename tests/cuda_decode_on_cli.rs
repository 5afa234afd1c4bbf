//! `simclr pretrain --augment-on gpu --decode-on ...` on the (emulated) device, on a generated
//! folder of JPEGs and PNGs of mixed sizes: `cpu` trains its epoch with the workers decoding;
//! `gpu` decodes the JPEGs with nvJPEG and says so; without nvJPEG (hidden from the
//! emulated device by `SIMCLR_EMU_NO_NVJPEG=1`), `auto` decodes on the CPU with a message
//! saying why and `gpu` stops before training with an error naming the flag.
#![cfg(feature = "cuda")]

#[path = "support/cli.rs"]
mod cli;
#[path = "cuda_common.rs"]
mod common;
#[path = "support/mixed_folder.rs"]
mod mixed_folder;

use std::process::Command;

fn pretrain(data: &str, out: &std::path::Path, decode: &str, hide: bool) -> (bool, String) {
    let mut c = Command::new(cli::bin());
    c.args(["pretrain", "--device", cli::gpu_device()])
        .args(["--augment-on", "gpu", "--decode-on", decode])
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
        .args(["--knn-every", "0", "--out", out.to_str().unwrap()]);
    if hide {
        c.env("SIMCLR_EMU_NO_NVJPEG", "1");
    }
    let o = c.output().unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(!text.contains("panicked"), "{text}");
    (o.status.success(), text)
}

#[test]
fn decode_on_chooses_nvjpeg_or_says_why_not() {
    if common::gpu().is_none() {
        return;
    }
    let mut rng = simclr::Rng::new(simclr::testing::fresh_seed("decode_on_cli"));
    let root = tempfile::tempdir().unwrap();
    mixed_folder::mixed_folder(root.path(), 8, (24, 64), &mut rng);
    let data = root.path().to_str().unwrap();
    let out = tempfile::tempdir().unwrap();

    // The augmentation on the GPU, every image decoded on the workers.
    let (ok, text) = pretrain(data, &out.path().join("cpu"), "cpu", false);
    assert!(ok, "{text}");
    assert!(text.contains("pretrain epoch 1/1: loss"), "{text}");
    assert!(!text.contains("decode: "), "{text}");
    assert!(
        out.path().join("cpu/pretrain.safetensors").exists(),
        "{text}"
    );

    let (ok, text) = pretrain(data, &out.path().join("gpu"), "gpu", false);
    assert!(ok, "{text}");
    assert!(
        text.contains("decode: JPEGs on the GPU (nvJPEG, "),
        "{text}"
    );
    assert!(text.contains("pretrain epoch 1/1: loss"), "{text}");

    // Hiding nvJPEG is an emulated device's test hook: a GPU keeps its library.
    if cli::gpu_device() != "cuda-emu" {
        return;
    }
    let (ok, text) = pretrain(data, &out.path().join("auto"), "auto", true);
    assert!(ok, "{text}");
    assert!(
        text.contains("decode: nvJPEG cannot be used (nvJPEG hidden"),
        "{text}"
    );
    assert!(text.contains("JPEGs are decoded on the CPU"), "{text}");

    let (ok, text) = pretrain(data, &out.path().join("refused"), "gpu", true);
    assert!(!ok, "{text}");
    assert!(
        text.contains("--decode-on gpu: nvJPEG cannot be used"),
        "{text}"
    );
}
