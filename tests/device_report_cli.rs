//! `simclr info --device cuda`: prints the library and device report, and exits non-zero
//! unless the GPU can be used. On a machine with a usable GPU (and a CUDA build) it must say
//! `status: OK` and exit 0; anywhere else it must print why and exit non-zero.

use std::process::Command;

#[test]
fn info_device_cuda_reports_and_fails_without_a_gpu() {
    let out = Command::new(env!("CARGO_BIN_EXE_simclr"))
        .args(["info", "--device", "cuda"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    if simclr::cuda_available() {
        assert!(out.status.success(), "a usable GPU but the report failed");
        assert!(stdout.contains("status: OK"));
        assert!(stdout.contains("compute capability"));
    } else {
        assert!(!out.status.success(), "no usable GPU, yet exit 0");
        assert!(stderr.contains("error:"), "no error line");
        if cfg!(feature = "cuda") {
            assert!(stdout.contains("CUDA report"), "no report");
            assert!(stdout.contains("folders searched"), "no search list");
            assert!(
                stdout.contains("driver  MISSING"),
                "the missing driver is not named"
            );
            assert!(stdout.contains("status: FAILED"));
        } else {
            assert!(stdout.contains("without the `cuda` feature"));
        }
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_simclr"))
        .args(["info", "--device", "tpu"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("allowed: cuda"));
}
