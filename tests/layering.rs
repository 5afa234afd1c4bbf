//! The crate's floors (ARCHITECTURE.md): every `crate::…` path in `src/` must name a module on
//! the same floor or below, except the upward imports listed in `KNOWN_UPWARD`, each with the
//! reason it is still there. A new upward import fails this test, and so does an entry of the
//! list that no longer occurs (the list only shrinks, as the layering step moves code down).

#[path = "support/rust_files.rs"]
mod rust_files;

use rust_files::rust_files;
use std::collections::BTreeSet;
use std::path::Path;

/// Top-level modules (and the root functions and macros that stand for one) by floor.
const FLOORS: &[(&str, usize)] = &[
    ("tensor", 0),
    ("abi", 0),
    ("error", 0),
    ("rng", 0),
    ("float_dispatch", 0),
    ("cuda", 1),
    ("cuda_available", 1),
    ("cuda_unavailable_reason", 1),
    ("conv_policy", 1),
    ("device_select", 1),
    ("profile", 1),
    ("ops", 2),
    ("on_backend", 2),
    ("comm", 3),
    ("autograd", 4),
    ("params", 4),
    ("checkpoint", 4),
    // 5: the taped ops, `ops/<op>/tape.rs` (see `TAPED_OPS`).
    ("nn", 6),
    ("optim", 7),
    ("data", 7),
    ("interop", 8),
    ("train", 8),
    ("cli", 9),
];

/// The floor of an op's tape-recording functions (`src/ops/<op>/tape.rs`): above the tape and
/// the parameters, below the layers. The rest of an op's folder is the raw ops' floor.
const TAPED_OPS: usize = 5;

/// (file under `src/`, module it imports from a higher floor): none is left. An entry here
/// would need its reason, and the test fails once it no longer occurs.
const KNOWN_UPWARD: &[(&str, &str)] = &[];

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().find(|(m, _)| *m == module).map(|&(_, f)| f)
}

/// The floor of a source file: that of the top-level module it belongs to.
fn module_of(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Test code may reach anywhere: `tests.rs`, `*_tests.rs`, `src/**/tests/`, `src/testing/`.
fn is_test_code(rel: &Path) -> bool {
    let name = rel.file_name().unwrap().to_string_lossy();
    name == "tests.rs"
        || name.ends_with("_tests.rs")
        || rel
            .components()
            .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "testing")
}

/// The top-level names a line's `crate::` paths start with; `crate::{a, b::c}` gives a and b.
fn crate_roots(line: &str) -> Vec<String> {
    let mut roots = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group, up to its matching brace (or the line's end).
            let (mut depth, mut item_start) = (0usize, true);
            for (i, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        rest = &group[i..];
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphabetic() || c == '_') => {
                        roots.push(ident_at(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            roots.push(ident_at(rest));
        }
    }
    roots
}

fn ident_at(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn upward_imports() -> BTreeSet<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = BTreeSet::new();
    for path in files {
        let rel = path.strip_prefix(&src).unwrap().to_path_buf();
        if is_test_code(&rel) || rel.components().count() == 1 && rel.ends_with("lib.rs") {
            continue;
        }
        let module = module_of(&rel);
        let Some(mut floor) = floor_of(&module) else {
            continue; // the binary's entry point and other top-level files sit above cli
        };
        if module == "ops" && rel.file_name().is_some_and(|n| n == "tape.rs") {
            floor = TAPED_OPS;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // An inline test module comes last in a file.
        let body = text.split("#[cfg(test)]\nmod tests {").next().unwrap();
        for line in body.lines() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for root in crate_roots(code) {
                if floor_of(&root).is_some_and(|f| f > floor) {
                    let file = rel.to_string_lossy().replace('\\', "/");
                    found.insert((file, root));
                }
            }
        }
    }
    found
}

#[test]
fn no_module_imports_from_a_higher_floor_beyond_the_known_list() {
    let found = upward_imports();
    let known: BTreeSet<(String, String)> = KNOWN_UPWARD
        .iter()
        .map(|&(f, m)| (f.to_string(), m.to_string()))
        .collect();
    let new: Vec<_> = found.difference(&known).collect();
    let gone: Vec<_> = known.difference(&found).collect();
    assert!(
        new.is_empty(),
        "upward imports not in KNOWN_UPWARD (move the code down, or import from below): {new:?}"
    );
    assert!(
        gone.is_empty(),
        "KNOWN_UPWARD lists imports that no longer occur (remove them): {gone:?}"
    );
}

#[test]
fn every_top_level_module_has_a_floor() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let modules: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';'))
        .filter(|m| *m != "testing")
        .collect();
    assert!(modules.len() >= 10, "lib.rs declares {modules:?}");
    for m in modules {
        assert!(floor_of(m).is_some(), "src/{m} has no floor in FLOORS");
    }
}

#[test]
fn the_import_scanner_reads_groups_and_paths() {
    assert_eq!(
        crate_roots("use crate::{ops, DType, nn::{Ctx, Linear}, Result};"),
        ["ops", "DType", "nn", "Result"]
    );
    assert_eq!(
        crate_roots("let x = crate::cuda::gpu()?; crate::comm::single()"),
        ["cuda", "comm"]
    );
    assert!(crate_roots("use super::model::SimClrNet;").is_empty());
}
