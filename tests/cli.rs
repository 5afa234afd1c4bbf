//! The binary's contract on bad input: one clear message, non-zero exit, no panic.

use std::process::Command;

fn simclr(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_simclr"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn info_prints_counts_and_gmacs() {
    let (code, out, _) = simclr(&["info", "--model", "r50_1x_sk0", "--brief"]);
    assert_eq!(code, 0);
    assert!(out.contains("encoder params:   23508032"), "{out}");
    // 4.1 GMACs per 224-px image (PERFORMANCE.md).
    assert!(out.contains("forward GMACs:    4.087"), "{out}");
    let (code, out, _) = simclr(&["info", "--model", "r152_3x_sk1"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("encoder.layer4.2.sk.conv") && out.contains("157.7"),
        "{out}"
    );
}

#[test]
fn unknown_model_is_a_clear_error() {
    for bad in ["r51_1x_sk1", "resnet50", "r50_9x_sk1", "r50_1x_sk2"] {
        let (code, _, err) = simclr(&["info", "--model", bad]);
        assert_eq!(code, 1, "{bad}");
        assert!(
            err.starts_with("error: unknown model") && err.contains(bad),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn missing_checkpoint_names_the_path() {
    let (code, _, err) = simclr(&[
        "info",
        "--model",
        "r18_1x_sk0",
        "--checkpoint",
        "/nonexistent/x.safetensors",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("/nonexistent/x.safetensors") && err.contains("no such file"),
        "{err}"
    );
}
