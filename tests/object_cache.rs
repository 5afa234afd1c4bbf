//! The emulated build's object cache (build/object_cache.rs): an object is reused exactly when
//! the unit's text, its arguments and every header of the include folders are the same, wherever
//! the folders are (a planted fault's copy of kernels/); anything else is a miss. Keys only: no
//! compiler runs but `c++ --version`. No feature needed: build.rs uses it only with `cuda-emu`.

#[path = "../build/object_cache.rs"]
mod object_cache;

use object_cache::ObjectCache;
use std::path::{Path, PathBuf};

/// A folder of headers `files` (name, text) under `root/name`.
fn folder(root: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (f, text) in files {
        std::fs::write(dir.join(f), text).unwrap();
    }
    dir
}

fn args(extra: &[&str]) -> Vec<String> {
    ["-O2", "-c"]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
}

/// The object's path for `text` under the given include folders, and whether it was a hit;
/// a miss is then "compiled" (written), as build/emu.rs does.
fn lookup(cache_dir: &Path, include: &[PathBuf], args: &[String], text: &str) -> (PathBuf, bool) {
    let cache = ObjectCache::new(cache_dir.to_path_buf(), "c++", include).unwrap();
    let (obj, hit) = cache.object(args, &[text.as_bytes()]);
    if !hit {
        std::fs::write(&obj, b"object").unwrap();
    }
    (obj, hit)
}

#[test]
fn same_inputs_hit_wherever_the_folders_are() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("objects");
    let headers = [("vec.cuh", "// v1"), ("common.cuh", "// c1")];
    let a = folder(tmp.path(), "kernels", &headers);
    let b = folder(tmp.path(), "kernels-copy", &headers);
    let (first, hit) = lookup(&cache, &[a], &args(&[]), "kernel text");
    assert!(!hit, "an empty cache hit");
    let (again, hit) = lookup(&cache, &[b], &args(&[]), "kernel text");
    assert!(hit, "the same headers in another folder missed");
    assert_eq!(first, again);
}

#[test]
fn any_changed_input_misses() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("objects");
    let base = folder(tmp.path(), "k0", &[("vec.cuh", "// v1")]);
    let (obj, _) = lookup(&cache, std::slice::from_ref(&base), &args(&[]), "text");
    let cases: Vec<(&str, Vec<PathBuf>, Vec<String>, &str)> = vec![
        (
            "unit text",
            vec![base.clone()],
            args(&[]),
            "text with a fault",
        ),
        (
            "flags",
            vec![base.clone()],
            args(&["-fsanitize=alignment"]),
            "text",
        ),
        (
            "a header's text",
            vec![folder(tmp.path(), "k1", &[("vec.cuh", "// v2")])],
            args(&[]),
            "text",
        ),
        (
            "a header more",
            vec![folder(
                tmp.path(),
                "k2",
                &[("vec.cuh", "// v1"), ("new.cuh", "")],
            )],
            args(&[]),
            "text",
        ),
        (
            "a header renamed",
            vec![folder(tmp.path(), "k3", &[("vec2.cuh", "// v1")])],
            args(&[]),
            "text",
        ),
        (
            "the folders' order",
            vec![folder(tmp.path(), "empty", &[]), base.clone()],
            args(&[]),
            "text",
        ),
    ];
    for (what, include, args, text) in cases {
        let (other, hit) = lookup(&cache, &include, &args, text);
        assert!(!hit, "a changed {what} hit the cache");
        assert_ne!(other, obj, "a changed {what} has the same key");
    }
    // Files that are not headers do not count (kernels/*.cu are units of their own).
    let with_source = folder(tmp.path(), "k4", &[("vec.cuh", "// v1"), ("pool.cu", "x")]);
    assert!(lookup(&cache, &[with_source], &args(&[]), "text").1);
}

#[test]
fn pruning_keeps_what_was_used_within_a_day() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("objects");
    let include = [folder(tmp.path(), "k", &[("a.cuh", "")])];
    let (recent, _) = lookup(&dir, &include, &args(&[]), "recent");
    let (stale, _) = lookup(&dir, &include, &args(&[]), "stale");
    let two_days = std::time::Duration::from_secs(2 * 24 * 3600);
    let old = std::time::SystemTime::now() - two_days;
    let touch = |p: &Path, t| {
        std::fs::File::options()
            .append(true)
            .open(p)
            .unwrap()
            .set_modified(t)
            .unwrap()
    };
    touch(&recent, old);
    touch(&stale, old);
    // A hit renews the object's time.
    assert!(lookup(&dir, &include, &args(&[]), "recent").1);
    ObjectCache::new(dir.clone(), "c++", &include)
        .unwrap()
        .prune();
    assert!(recent.is_file(), "a hit of today was pruned");
    assert!(!stale.is_file(), "an object unused for two days was kept");
}
