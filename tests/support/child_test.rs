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
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child test {name} did not pass:\n{stdout}{stderr}"
    );
    (stdout, stderr)
}
