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
