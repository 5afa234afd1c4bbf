//! Our hand-written binding of Open MPI (src/comm/mpi/ffi.rs, loaded at run time) held against
//! the `mpi.h` of the Open MPI installed here: each entry point's argument shapes, the constants
//! we use, and that each predefined handle's macro (`MPI_COMM_WORLD`, `MPI_FLOAT`, `MPI_SUM`, …)
//! is the address of the very global we look up for it (`ompi_mpi_comm_world`, …). The program
//! (tests/support/header_check.rs) is compiled with `mpicc --showme` flags and linked with
//! libmpi to compare those addresses.
//!
//! Without `mpicc` the test prints `skipped:`; with `SIMCLR_REQUIRE_MPI=1` (CI) it fails.
#![cfg(feature = "mpi")]

#[path = "support/header_check.rs"]
mod header_check;

use header_check::{mismatches, theirs, Declared, Headers};
use simclr::comm::mpi::ffi;
use std::path::PathBuf;
use std::process::Command;

/// `mpicc --showme:<what>`, split into words; None when mpicc cannot say.
fn showme(what: &str) -> Option<Vec<String>> {
    let out = Command::new("mpicc")
        .arg(format!("--showme:{what}"))
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect()
    })
}

#[test]
fn our_open_mpi_binding_matches_mpi_h() {
    let (Some(compile), Some(link)) = (showme("compile"), showme("link")) else {
        let why = "mpicc not found (install libopenmpi-dev)";
        assert!(
            std::env::var("SIMCLR_REQUIRE_MPI").as_deref() != Ok("1"),
            "SIMCLR_REQUIRE_MPI=1 but {why}"
        );
        println!("skipped: {why}");
        return;
    };
    let include_dirs: Vec<PathBuf> = compile
        .iter()
        .filter_map(|f| f.strip_prefix("-I").map(PathBuf::from))
        .collect();
    let mut ours = Declared::default();
    ours.shapes(ffi::declared_shapes());
    ours.constants(ffi::declared_constants());
    for (macro_name, global) in ffi::declared_handles() {
        ours.handles.insert(macro_name.into(), global.into());
    }
    let headers = Headers {
        // The C API only: mpi.h in C++ also declares Open MPI's C++ bindings (libmpi_cxx).
        prelude: "#define OMPI_SKIP_MPICXX 1",
        includes: &["mpi.h"],
        include_dirs,
        link,
        overloaded: &[],
    };
    let theirs = theirs(&headers, &ours);
    let m = mismatches(&ours, &theirs, &[]);
    println!(
        "{} functions, {} constants, {} handles checked against mpi.h",
        ours.shapes.len(),
        ours.constants.len(),
        ours.handles.len()
    );
    assert!(m.is_empty(), "{} mismatches:\n{}", m.len(), m.join("\n"));

    // The comparison can fail: an argument too many, a wrong thread level, a handle taken from
    // the wrong global, each reported by name.
    let mut wrong = ours;
    wrong
        .shapes
        .insert("MPI_Ibarrier".into(), "int32(ptr, ptr, ptr)".into());
    *wrong.constants.get_mut("MPI_THREAD_SERIALIZED").unwrap() += 1;
    wrong
        .handles
        .insert("MPI_FLOAT".into(), "ompi_mpi_double".into());
    let m = mismatches(&wrong, &theirs, &[]);
    assert_eq!(m.len(), 3, "{m:#?}");
    for name in ["MPI_Ibarrier", "MPI_THREAD_SERIALIZED", "MPI_FLOAT"] {
        assert!(
            m.iter().any(|l| l.starts_with(name)),
            "{name} not reported: {m:#?}"
        );
    }
}
