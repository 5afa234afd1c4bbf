//! Scratch directories for integration tests, removed when the test ends, pass or fail.

use std::path::{Path, PathBuf};

pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh path under the temp directory (not created: some tests want it absent).
pub fn scratch(prefix: &str, name: &str) -> Scratch {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    Scratch(std::env::temp_dir().join(format!(
        "simclr-{prefix}-{}-{nanos}-{name}",
        std::process::id()
    )))
}
