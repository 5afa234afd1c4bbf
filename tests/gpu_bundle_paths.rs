//! The tests the GPU bundle carries (the library's `cuda_tests`, `tests/cuda_*.rs` and the
//! files they include with `#[path]`) run on a machine that has the bundle, not this checkout:
//! they find their files relative to the package root, which is their working directory both
//! under cargo and in the bundle (scripts/build-gpu-bundle.sh copies `tests/fixtures`). A path
//! built from `env!("CARGO_MANIFEST_DIR")` names the build machine's checkout, absent there.

use std::path::{Path, PathBuf};

const BUILD_PATH: &str = concat!("env!(\"CARGO_", "MANIFEST_DIR\")");

fn bundled_sources(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut lib = vec![root.join("src")];
    while let Some(dir) = lib.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                lib.push(p);
            } else if name == "cuda_tests.rs" {
                out.push(p);
            }
        }
    }
    for e in std::fs::read_dir(root.join("tests")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("cuda_") && name.ends_with(".rs") {
            let text = std::fs::read_to_string(&p).unwrap();
            out.extend(
                included(&text)
                    .into_iter()
                    .map(|i| root.join("tests").join(i)),
            );
            out.push(p);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The files `#[path = "..."]` attributes of `text` include.
fn included(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("#[path = \""))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn bundled_tests_do_not_name_the_build_machines_checkout() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = bundled_sources(root);
    assert!(
        sources.len() > 20,
        "only {} bundled sources found",
        sources.len()
    );
    let offenders: Vec<String> = sources
        .iter()
        .filter(|p| std::fs::read_to_string(p).unwrap().contains(BUILD_PATH))
        .map(|p| p.strip_prefix(root).unwrap().display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "{offenders:?} build paths from {BUILD_PATH}; use paths relative to the package root"
    );
}

#[test]
fn path_attributes_are_read() {
    let text = "#[path = \"cuda_common.rs\"]\nmod common;\n    #[path = \"support/x.rs\"]\n";
    assert_eq!(included(text), ["cuda_common.rs", "support/x.rs"]);
}
