//! The real file formats end to end: tiny CIFAR-10, CIFAR-100 and MNIST files written here in
//! the formats the datasets ship in, then trained on and evaluated by the binary.

use std::path::Path;
use std::process::Command;

#[path = "support/mod.rs"]
mod support;

fn simclr(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_simclr"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "simclr {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A pseudo-random byte stream (the content does not matter, the format does).
fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

/// `n` CIFAR records: `label_bytes` label bytes (coarse then fine for CIFAR-100), then the
/// 32x32 image as R, G and B planes. Labels cycle through `classes`.
fn cifar_file(path: &Path, n: usize, label_bytes: usize, classes: usize, seed: u64) {
    let mut out = Vec::new();
    let px = bytes(seed, n * 3072);
    for i in 0..n {
        if label_bytes == 2 {
            out.push((i % 20) as u8);
        }
        out.push(((i + 4 * seed as usize) % classes) as u8);
        out.extend_from_slice(&px[i * 3072..(i + 1) * 3072]);
    }
    std::fs::write(path, out).unwrap();
}

fn idx_files(dir: &Path, prefix: &str, n: usize, seed: u64) {
    let mut img = vec![0, 0, 8, 3];
    for d in [n as u32, 28, 28] {
        img.extend_from_slice(&d.to_be_bytes());
    }
    img.extend(bytes(seed, n * 784));
    let mut lab = vec![0, 0, 8, 1];
    lab.extend_from_slice(&(n as u32).to_be_bytes());
    lab.extend((0..n).map(|i| (i % 10) as u8));
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), img).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), lab).unwrap();
}

fn top1(out: &Path, stage: &str) -> f64 {
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    s[stage]["top1"].as_f64().unwrap()
}

const SMALL: [&str; 12] = [
    "--model",
    "r18_0.25x_sk0",
    "--epochs",
    "1",
    "--batch-size",
    "8",
    "--labels-per-class",
    "1",
    "--device",
    "cpu",
    "--workers",
    "1",
];

#[test]
fn cifar10_binary_files_run_the_whole_pipeline() {
    let dir = support::scratch::scratch("datasets", "cifar10");
    let data = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&data).unwrap();
    for b in 1..=5 {
        cifar_file(&data.join(format!("data_batch_{b}.bin")), 4, 1, 10, b);
    }
    cifar_file(&data.join("test_batch.bin"), 10, 1, 10, 9);
    let out = dir.join("run");
    let mut args = vec!["pipeline", "--dataset", "cifar10", "--data-dir"];
    args.extend([dir.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    args.extend(SMALL);
    simclr(&args);
    for stage in ["finetune", "distill", "linear-eval", "supervised"] {
        assert!((0.0..=1.0).contains(&top1(&out, stage)), "{stage}");
    }
    let labels = std::fs::read_to_string(out.join("labels.json")).unwrap();
    assert!(labels.contains("\"count\":10"), "{labels}");
}

#[test]
fn cifar100_and_mnist_files_train_and_evaluate() {
    let dir = support::scratch::scratch("datasets", "cifar100-mnist");
    let c100 = dir.join("cifar-100-binary");
    std::fs::create_dir_all(&c100).unwrap();
    cifar_file(&c100.join("train.bin"), 100, 2, 100, 1);
    cifar_file(&c100.join("test.bin"), 20, 2, 100, 2);
    let mnist = dir.join("mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    idx_files(&mnist, "train", 20, 3);
    idx_files(&mnist, "t10k", 10, 4);
    for (name, data) in [("cifar100", &dir.to_path_buf()), ("mnist", &mnist)] {
        let out = dir.join(format!("run-{name}"));
        let mut args = vec!["supervised", "--dataset", name, "--data-dir"];
        args.extend([data.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        args.extend(SMALL);
        simclr(&args);
        assert!((0.0..=1.0).contains(&top1(&out, "supervised")), "{name}");
    }
    let labels = std::fs::read_to_string(dir.join("run-cifar100/labels.json")).unwrap();
    assert!(labels.contains("\"count\":100"), "{labels}");
}
