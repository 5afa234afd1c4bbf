//! Objects of the emulated build kept by content (build/emu.rs). A translation unit whose
//! compiler, flags, text and headers are unchanged is not compiled again, whatever folder it was
//! read from: a planted fault's copy of kernels/ changes one file, and every other module hits.
//! Each key covers the compiler's version, every argument but the paths, the unit's text and the
//! text of every header the include folders hold (all of them: a changed header rebuilds every
//! unit, which is what including it may need).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

pub struct ObjectCache {
    dir: PathBuf,
    base: u64,
}

/// The header files of `dir` (sorted by name), by extension.
fn headers(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| {
        matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("h" | "cuh" | "hpp")
        )
    });
    v.sort();
    v
}

impl ObjectCache {
    /// A cache in `dir` for units compiled by `cxx` with the include folders `include`.
    pub fn new(dir: PathBuf, cxx: &str, include: &[PathBuf]) -> Result<Self, String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let version = Command::new(cxx)
            .arg("--version")
            .output()
            .map_err(|e| format!("running the host C++ compiler `{cxx}`: {e}"))?;
        let mut h = DefaultHasher::new();
        cxx.hash(&mut h);
        version.stdout.hash(&mut h);
        for (i, folder) in include.iter().enumerate() {
            for header in headers(folder) {
                let text =
                    std::fs::read(&header).map_err(|e| format!("{}: {e}", header.display()))?;
                (i, header.file_name(), text).hash(&mut h);
            }
        }
        Ok(ObjectCache {
            dir,
            base: h.finish(),
        })
    }

    /// Where the object of a unit made of `texts`, compiled with `args`, lives; whether it is
    /// there already (a hit is touched, so [`Self::prune`] keeps it).
    pub fn object(&self, args: &[String], texts: &[&[u8]]) -> (PathBuf, bool) {
        let mut h = DefaultHasher::new();
        (self.base, args, texts).hash(&mut h);
        let obj = self.dir.join(format!("{:016x}.o", h.finish()));
        let hit = std::fs::File::options()
            .append(true)
            .open(&obj)
            .and_then(|f| f.set_modified(SystemTime::now()))
            .is_ok();
        (obj, hit)
    }

    /// Removes the objects unused for a day: the cache holds what recent builds used (the
    /// checkout's modules and a few variants), not every version ever compiled.
    pub fn prune(&self) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let day = Duration::from_secs(24 * 3600);
        for e in rd.filter_map(|e| e.ok()) {
            let age = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            if age.is_some_and(|a| a > day) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
