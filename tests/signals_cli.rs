//! Issue 14, item 9: SIGINT and SIGTERM finish the step, save a resumable state, say how to
//! resume and exit 130 / 143; the resumed run ends with the weights of an uninterrupted one.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;

fn args(out: &Path) -> Vec<String> {
    support::tiny_run::args("pretrain", out, 6, &["--queue-size", "16"])
}

fn run_to_end(out: &Path, more: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_simclr"))
        .args(args(out))
        .args(more)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Starts a run, sends `signal` once its first epoch is logged, returns (exit code, stderr).
fn interrupt(out: &Path, signal: i32) -> (Option<i32>, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_simclr"))
        .args(args(out))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !out.join("pretrain.state.safetensors").exists() {
        assert!(t.elapsed() < Duration::from_secs(120), "no epoch finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let o = child.wait_with_output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn sigint_saves_a_state_that_resumes_to_the_uninterrupted_weights() {
    let whole = support::scratch::scratch("signals", "whole");
    let cut = support::scratch::scratch("signals", "cut");
    let (code, err) = interrupt(&cut, libc::SIGINT);
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("stopped by SIGINT after step"), "{err}");
    assert!(err.contains("--resume"), "{err}");
    assert!(!cut.join("pretrain.safetensors").exists());
    assert!(!cut.join(".simclr.lock").exists());
    run_to_end(&cut, &["--resume"]);
    run_to_end(&whole, &[]);
    let (a, b) = (
        std::fs::read(whole.join("pretrain.safetensors")).unwrap(),
        std::fs::read(cut.join("pretrain.safetensors")).unwrap(),
    );
    assert!(a == b, "the resumed run ends with other weights");
}

#[test]
fn sigterm_exits_143_with_a_state() {
    let cut = support::scratch::scratch("signals", "term");
    let (code, err) = interrupt(&cut, libc::SIGTERM);
    assert_eq!(code, Some(143), "{err}");
    assert!(err.contains("stopped by SIGTERM"), "{err}");
}

#[test]
fn outside_a_training_loop_sigint_ends_the_process_at_once() {
    use std::os::unix::process::ExitStatusExt;
    let out = support::scratch::scratch("signals", "early");
    // Drawing 400,000 built-in images takes many seconds before the first step.
    let mut child = Command::new(env!("CARGO_BIN_EXE_simclr"))
        .args(
            args(&out)
                .iter()
                .map(|a| if a == "40" { "400000" } else { a }),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}
