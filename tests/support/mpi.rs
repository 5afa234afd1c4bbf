//! Whether the MPI tests can run: `mpirun` on the PATH (Debian: openmpi-bin libopenmpi-dev).

#![allow(dead_code)]

use std::process::Command;

/// Whether mpirun is here; without it, false after printing why, or a panic when
/// `SIMCLR_REQUIRE_MPI=1` (CI) says it must be: a skip must never pass there.
pub fn have_mpirun() -> bool {
    let ok = Command::new("mpirun")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let why = "mpirun not found (install openmpi-bin and libopenmpi-dev)";
        if std::env::var("SIMCLR_REQUIRE_MPI").as_deref() == Ok("1") {
            panic!("SIMCLR_REQUIRE_MPI=1 but {why}");
        }
        println!("skipped: {why}");
    }
    ok
}

/// Runs the ignored test `body` of this test binary as `np` ranks under mpirun (with `env`),
/// and returns their stdout and stderr together; panics with them when the job failed.
pub fn run_ranks(np: usize, body: &str, env: &[(&str, String)]) -> String {
    let out = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np"])
        .arg(np.to_string())
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", body, "--ignored", "--nocapture"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}
