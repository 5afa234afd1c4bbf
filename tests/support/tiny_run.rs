//! The command line of the tiny CPU runs the trainer's CLI tests share: a quarter-width ResNet-18
//! (no SK) on 40 built-in training images and 20 test images, batch 8 (5 steps an epoch).

#![allow(dead_code)]

use std::path::Path;

/// `simclr <command>` for `epochs` epochs into `out`, then `more`.
pub fn args(command: &str, out: &Path, epochs: usize, more: &[&str]) -> Vec<String> {
    let epochs = epochs.to_string();
    let mut a: Vec<String> = [
        command,
        "--device",
        "cpu",
        "--model",
        "r18_0.25x_sk0",
        "--synthetic-train",
        "40",
        "--synthetic-test",
        "20",
        "--batch-size",
        "8",
        "--epochs",
        &epochs,
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(out.to_str().expect("scratch paths are UTF-8").to_string());
    a.extend(more.iter().map(|s| s.to_string()));
    a
}
