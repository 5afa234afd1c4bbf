//! `simclr pretrain --dataset folder` streams a generated ImageNet-layout folder (JPEG and PNG of
//! mixed sizes, grayscale and EXIF-rotated files) holding one truncated JPEG: by default the run
//! stops with a non-zero exit and an error naming the file; with `--bad-images skip` it warns
//! naming the file and finishes the epoch.

#[path = "support/tiny_run.rs"]
mod tiny_run;

use simclr::data::stream::synth::{write_split, SynthFolder};
use simclr::Rng;
use std::process::Command;

#[test]
fn training_on_a_folder_refuses_or_skips_a_truncated_jpeg() {
    let mut rng = Rng::new(simclr::testing::fresh_seed(
        "training_on_a_folder_refuses_or_skips_a_truncated_jpeg",
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
    let files = write_split(root.path(), "train", &spec, &mut rng).unwrap();
    write_split(
        root.path(),
        "val",
        &SynthFolder {
            per_class: 2,
            ..spec
        },
        &mut rng,
    )
    .unwrap();
    let bad = files
        .iter()
        .find(|f| f.extension().unwrap() == "JPEG")
        .unwrap();
    let bytes = std::fs::read(bad).unwrap();
    std::fs::write(bad, &bytes[..bytes.len() / 3]).unwrap();
    let name = bad.file_name().unwrap().to_str().unwrap();
    let run = |more: &[&str]| {
        let out = root.path().join(format!("run{}", more.len()));
        let mut a = tiny_run::args("pretrain", &out, 1, more);
        let dir = root.path().to_str().unwrap();
        a.extend(
            [
                "--dataset",
                "folder",
                "--data-dir",
                dir,
                "--image-size",
                "16",
            ]
            .map(String::from),
        );
        Command::new(env!("CARGO_BIN_EXE_simclr"))
            .args(&a)
            .output()
            .unwrap()
    };
    let refused = run(&[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "a truncated file was accepted: {err}"
    );
    assert!(
        err.contains(name) && err.contains("cannot decode JPEG"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let skipped = run(&["--bad-images", "skip"]);
    let err = String::from_utf8_lossy(&skipped.stderr);
    assert!(skipped.status.success(), "{err}");
    assert!(
        err.contains("warning: skipping unreadable image") && err.contains(name),
        "{err}"
    );
    assert_eq!(err.matches(name).count(), 1, "warned more than once: {err}");
}
