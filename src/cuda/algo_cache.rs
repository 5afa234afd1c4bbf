//! cuDNN's algorithm choices kept on disk, so the measured search (cudnnFind*AlgorithmEx, which
//! runs every algorithm) happens once per GPU model, cuDNN version, direction, dtype and shape,
//! not once per process and probe size.
//!
//! One JSON file, `cudnn-algos.json`, in `$SIMCLR_CACHE_DIR`, else `$XDG_CACHE_HOME/simclr`,
//! else `~/.cache/simclr`: `{"format": 4, "entries": {key: {"algo": n, "math": m, "workspace":
//! bytes, "ms": t, "faster": {"algo": n, "ms": t}}}}` ("faster" only where the policy passed over
//! a faster algorithm). A key is `direction|gpu name|cudnn version|dtype|policy|geometry` ([`key`]; the
//! policy is `--conv-algorithms`: deterministic or fastest); `algo` is the cuDNN enum's value
//! for that direction, `math` the cudnnMathType_t it was measured with (a search returns
//! algorithm and math type in pairs). Older formats are read as no cache: format 1 had no math
//! type, format 2's bf16 choices could be nondeterministic algorithms, and format 3's keys had
//! no policy. Writes merge with what another process wrote meanwhile and
//! replace the file atomically (temporary file in the same folder, then rename). A file that
//! cannot be read or parsed is ignored with one warning (and overwritten by the next write);
//! the cache never makes a convolution fail.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

const FORMAT: u32 = 4;
const FILE: &str = "cudnn-algos.json";

/// One cached choice: the algorithm (the cuDNN enum's value), the math type to run it with
/// (cudnnMathType_t's value) and its workspace in bytes; with what the search measured, for
/// the report of what the policy costs (`conv_algo_report`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub algo: u32,
    pub math: u32,
    pub workspace: usize,
    /// cuDNN's measured time of this algorithm, in milliseconds (None: not recorded, or not
    /// finite: JSON has no NaN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<f32>,
    /// The fastest algorithm that succeeded, when the policy passed it over (a nondeterministic
    /// one under `deterministic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faster: Option<Faster>,
}

/// An algorithm passed over, and its measured time in milliseconds (None: not finite).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Faster {
    pub algo: u32,
    #[serde(default)]
    pub ms: Option<f32>,
}

impl Choice {
    /// A choice without measurements (tests, and entries written before they were kept).
    pub fn plain(algo: u32, math: u32, workspace: usize) -> Self {
        Choice {
            algo,
            math,
            workspace,
            ms: None,
            faster: None,
        }
    }
}

#[derive(Serialize, Deserialize, Default)]
struct OnDisk {
    format: u32,
    entries: BTreeMap<String, Choice>,
}

/// The cache of one process; `path` None when no folder could be determined (memory only).
#[derive(Debug, Default)]
pub struct AlgoCache {
    path: Option<PathBuf>,
    entries: BTreeMap<String, Choice>,
}

/// What a choice is for, besides the machine and the geometry.
pub struct What<'a> {
    /// `fwd`, `bwd_data` or `bwd_filter`.
    pub direction: &'a str,
    /// The dtype's name.
    pub dtype: &'a str,
    /// The `--conv-algorithms` policy's name.
    pub algorithms: &'a str,
}

/// The key of one convolution: direction, the GPU's name, cuDNN's version number, the dtype,
/// the policy and the geometry numbers.
pub fn key(what: &What, gpu: &str, cudnn: usize, geometry: &[usize]) -> String {
    let g: Vec<String> = geometry.iter().map(|v| v.to_string()).collect();
    let What {
        direction,
        dtype,
        algorithms,
    } = what;
    format!(
        "{direction}|{gpu}|cudnn {cudnn}|{dtype}|{algorithms}|{}",
        g.join(",")
    )
}

/// The cache folder: `$SIMCLR_CACHE_DIR`, `$XDG_CACHE_HOME/simclr`, `$HOME/.cache/simclr`.
pub fn default_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("SIMCLR_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("simclr")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("simclr")))
}

impl AlgoCache {
    /// The cache in the default folder ([`default_dir`]).
    pub fn open_default() -> Self {
        match default_dir() {
            Some(d) => Self::open(d.join(FILE)),
            None => AlgoCache::default(),
        }
    }

    /// The cache backed by `path` (which need not exist yet).
    pub fn open(path: PathBuf) -> Self {
        let entries = read(&path).unwrap_or_else(|e| {
            eprintln!("warning: ignoring the cuDNN algorithm cache: {e}");
            BTreeMap::new()
        });
        AlgoCache {
            path: Some(path),
            entries,
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<Choice> {
        self.entries.get(key).copied()
    }

    /// Drops a choice (one that failed when run) and writes the file without it, so the next
    /// process searches again. A failed write is returned, as for [`AlgoCache::insert`].
    pub fn remove(&mut self, key: &str) -> Result<(), String> {
        if self.entries.remove(key).is_none() {
            return Ok(());
        }
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut on_disk = read(path).unwrap_or_default();
        on_disk.remove(key);
        for (k, v) in on_disk {
            self.entries.entry(k).or_insert(v);
        }
        write_atomic(path, &self.entries)
    }

    /// Records a choice and writes the file (merged with its current content). A failed write
    /// is returned for the caller to warn about; the choice stays in memory either way.
    pub fn insert(&mut self, key: String, choice: Choice) -> Result<(), String> {
        self.entries.insert(key, choice);
        let Some(path) = &self.path else {
            return Ok(());
        };
        // Another process may have added entries since we read: keep theirs and ours.
        if let Ok(theirs) = read(path) {
            for (k, v) in theirs {
                self.entries.entry(k).or_insert(v);
            }
        }
        write_atomic(path, &self.entries)
    }
}

/// The entries of `path`; an absent file is empty, an unreadable or malformed one an error.
fn read(path: &Path) -> Result<BTreeMap<String, Choice>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let d: OnDisk = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a cache file ({e})", path.display()))?;
    if d.format != FORMAT {
        return Err(format!(
            "{} has format {}, this build reads format {FORMAT}",
            path.display(),
            d.format
        ));
    }
    Ok(d.entries)
}

fn write_atomic(path: &Path, entries: &BTreeMap<String, Choice>) -> Result<(), String> {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{FILE}.{}.{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let d = OnDisk {
        format: FORMAT,
        entries: entries.clone(),
    };
    let text = serde_json::to_string_pretty(&d).map_err(|e| e.to_string())?;
    std::fs::write(&tmp, text).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("renaming {} to {}: {e}", tmp.display(), path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key of `direction`, `dtype` and `algorithms` ("d" stands for deterministic).
    fn kk(
        direction: &str,
        gpu: &str,
        cudnn: usize,
        dtype: &str,
        algos: &str,
        g: &[usize],
    ) -> String {
        let algorithms = if algos == "d" { "deterministic" } else { algos };
        let what = What {
            direction,
            dtype,
            algorithms,
        };
        key(&what, gpu, cudnn, g)
    }

    fn k(dtype: &str, n: usize) -> String {
        kk(
            "fwd",
            "NVIDIA H200",
            91000,
            dtype,
            "d",
            &[n, 56, 56, 64, 64, 3, 3],
        )
    }

    #[test]
    fn round_trip_across_processes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(FILE);
        let mut a = AlgoCache::open(path.clone());
        assert!(a.is_empty());
        let c = Choice::plain(1, 0, 4096);
        a.insert(k("f32", 8), c).unwrap();
        // A second "process" sees it, and its own insert keeps the first's entry.
        let mut b = AlgoCache::open(path.clone());
        assert_eq!(b.get(&k("f32", 8)), Some(c));
        b.insert(k("bf16", 8), Choice::plain(0, 0, 0)).unwrap();
        let mut a2 = AlgoCache::open(path.clone());
        assert_eq!(a2.len(), 2);
        // Merging: `a` (stale, one entry) writes again and must not drop b's entry.
        a.insert(k("f32", 16), c).unwrap();
        a2 = AlgoCache::open(path);
        assert_eq!(a2.len(), 3);
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FILE)]);
    }

    #[test]
    fn a_removed_choice_is_gone_for_the_next_process_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let c = Choice::plain(1, 1, 64);
        let mut a = AlgoCache::open(path.clone());
        a.insert(k("bf16", 8), c).unwrap();
        // Another process adds one meanwhile; removing ours keeps theirs.
        AlgoCache::open(path.clone())
            .insert(k("bf16", 16), c)
            .unwrap();
        a.remove(&k("bf16", 8)).unwrap();
        let b = AlgoCache::open(path);
        assert_eq!(b.get(&k("bf16", 8)), None);
        assert_eq!(b.get(&k("bf16", 16)), Some(c));
        a.remove(&k("bf16", 8)).unwrap();
    }

    #[test]
    fn keys_differ_in_every_part() {
        let base = kk("fwd", "GPU A", 91000, "f32", "d", &[1, 2]);
        for other in [
            kk("bwd_data", "GPU A", 91000, "f32", "d", &[1, 2]),
            kk("fwd", "GPU B", 91000, "f32", "d", &[1, 2]),
            kk("fwd", "GPU A", 91001, "f32", "d", &[1, 2]),
            kk("fwd", "GPU A", 91000, "bf16", "d", &[1, 2]),
            kk("fwd", "GPU A", 91000, "f32", "fastest", &[1, 2]),
            kk("fwd", "GPU A", 91000, "f32", "d", &[1, 3]),
            kk("fwd", "GPU A", 91000, "f32", "d", &[12]),
        ] {
            assert_ne!(base, other);
        }
        let dir = tempfile::tempdir().unwrap();
        let mut c = AlgoCache::open(dir.path().join(FILE));
        c.insert(base, Choice::plain(2, 0, 1)).unwrap();
        let c = AlgoCache::open(dir.path().join(FILE));
        assert_eq!(c.get(&kk("fwd", "GPU A", 91001, "f32", "d", &[1, 2])), None);
        assert_eq!(c.get(&kk("fwd", "GPU B", 91000, "f32", "d", &[1, 2])), None);
        assert_eq!(
            c.get(&kk("fwd", "GPU A", 91000, "f32", "fastest", &[1, 2])),
            None
        );
    }

    #[test]
    fn corrupt_or_foreign_files_are_ignored_then_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        for bad in [
            "{ not json",
            r#"{"format": 99, "entries": {}}"#,
            r#"{"format": 4, "entries": {"k": {"algo": -1}}}"#,
            // Format 3's keys had no policy: a choice could be a fastest one.
            r#"{"format": 3, "entries": {"k": {"algo": 0, "math": 0, "workspace": 0}}}"#,
            // Format 2's bf16 choices may be nondeterministic: not used.
            r#"{"format": 2, "entries": {"k": {"algo": 0, "math": 0, "workspace": 0}}}"#,
            // Format 1 had no math type: its choices are not used.
            r#"{"format": 1, "entries": {"k": {"algo": 1, "workspace": 0}}}"#,
        ] {
            std::fs::write(&path, bad).unwrap();
            let mut c = AlgoCache::open(path.clone());
            assert!(c.is_empty(), "{bad}");
            c.insert(k("f32", 1), Choice::plain(1, 0, 0)).unwrap();
            let again = AlgoCache::open(path.clone());
            assert_eq!(again.len(), 1, "{bad}: not rewritten");
        }
    }

    #[test]
    fn default_dir_follows_the_variables() {
        // Only reads the environment; the order is SIMCLR_CACHE_DIR, XDG_CACHE_HOME, HOME.
        let d = default_dir();
        if let Some(v) = std::env::var_os("SIMCLR_CACHE_DIR").filter(|v| !v.is_empty()) {
            assert_eq!(d, Some(PathBuf::from(v)));
        } else if let Some(v) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            assert_eq!(d, Some(PathBuf::from(v).join("simclr")));
        } else if let Some(v) = std::env::var_os("HOME") {
            assert_eq!(d, Some(PathBuf::from(v).join(".cache").join("simclr")));
        }
    }
}
