//! One ignored test of this test binary run alone in a child process with its own environment,
//! for what a test cannot change in its own process: a library hidden, a smaller emulated
//! device, a peak-memory count of its own.

use std::process::Command;

/// Runs the ignored test `name` of this binary alone, with `env`, its output not held back by
/// the harness; returns its standard output and error, or panics with both unless it passed.
pub fn run_child_test(name: &str, env: &[(&str, String)]) -> (String, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    // Its first panic's message leads (the line after `panicked at`), then everything.
    let both = format!("{stdout}{stderr}");
    let first = both
        .lines()
        .skip_while(|l| !l.contains("panicked at"))
        .nth(1)
        .unwrap_or("no panic message");
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child test {name} did not pass: {first}\n{both}"
    );
    (stdout, stderr)
}
