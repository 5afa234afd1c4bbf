//! The output directory of a run: checkpoints, `metrics.jsonl` (one JSON object per logged
//! step), `summary.json` (final metrics per stage, rewritten atomically) and `metrics.png`.

use crate::checkpoint::write_atomic;
use crate::{Error, Result};
use serde_json::{json, Map, Value};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct RunDir {
    path: PathBuf,
    /// None on the ranks after 0 of a multi-process job: only rank 0 writes.
    metrics: Option<File>,
    _lock: Option<super::lock::RunLock>,
}

impl RunDir {
    /// Creates the directory if needed and proves it is writable before any training starts.
    pub fn open(path: &Path) -> Result<Self> {
        let unwritable = |e: std::io::Error| {
            Error::Config(format!("cannot write to --out {}: {e}", path.display()))
        };
        std::fs::create_dir_all(path).map_err(unwritable)?;
        let lock = super::lock::RunLock::acquire(path)?;
        let probe = path.join(".write-probe");
        File::create(&probe)
            .and_then(|mut f| f.write_all(b"ok"))
            .map_err(unwritable)?;
        let _ = std::fs::remove_file(&probe);
        let metrics = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path.join("metrics.jsonl"))
            .map_err(unwritable)?;
        Ok(RunDir {
            path: path.to_path_buf(),
            metrics: Some(metrics),
            _lock: Some(lock),
        })
    }

    /// The run directory as a rank after 0 of a multi-process job sees it: it reads what rank 0
    /// wrote (a resumed state) and writes nothing; logging and summaries are no-ops.
    pub fn follower(path: &Path) -> Self {
        RunDir {
            path: path.to_path_buf(),
            metrics: None,
            _lock: None,
        }
    }

    /// Whether this process writes the run's files.
    pub fn is_writer(&self) -> bool {
        self.metrics.is_some()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Appends one metrics line (flushed, so a crash loses nothing already logged).
    pub fn log(&mut self, record: Value) -> Result<()> {
        let p = self.path.join("metrics.jsonl");
        let Some(metrics) = self.metrics.as_mut() else {
            return Ok(());
        };
        writeln!(metrics, "{record}")
            .and_then(|_| metrics.flush())
            .map_err(|e| Error::io(p, e))
    }

    /// Drops `stage`'s records after `step` (and its evaluations), which a resumed stage is
    /// about to log again: replayed steps must not appear twice.
    pub fn forget_after(&mut self, stage: &str, step: usize) -> Result<()> {
        if !self.is_writer() {
            return Ok(());
        }
        let p = self.path.join("metrics.jsonl");
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let replayed = |l: &str| {
            serde_json::from_str::<Value>(l).is_ok_and(|r| {
                r["stage"] == stage && r["step"].as_u64().is_none_or(|s| s as usize > step)
            })
        };
        let kept: Vec<&str> = text.lines().filter(|l| !replayed(l)).collect();
        if kept.len() == text.lines().count() {
            return Ok(());
        }
        let mut out = kept.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        write_atomic(&p, out.as_bytes())?;
        // The old handle appends to the replaced file: reopen.
        self.metrics = Some(
            OpenOptions::new()
                .append(true)
                .open(&p)
                .map_err(|e| Error::io(&p, e))?,
        );
        Ok(())
    }

    /// Sets `summary.json`'s entry for `stage`, keeping the other stages' entries.
    pub fn set_summary(&self, stage: &str, value: Value) -> Result<()> {
        if !self.is_writer() {
            return Ok(());
        }
        let path = self.path.join("summary.json");
        let mut all: Map<String, Value> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        all.insert(stage.to_string(), value);
        let text = serde_json::to_string_pretty(&Value::Object(all))
            .map_err(|e| Error::Config(e.to_string()))?;
        write_atomic(&path, text.as_bytes())
    }

    /// Every metrics record logged so far (for plotting).
    pub fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path.join("metrics.jsonl"))
            .map(|s| {
                s.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One training-step record.
pub fn step_record(
    stage: &str,
    epoch: usize,
    step: usize,
    loss: f64,
    lr: f64,
    images_per_s: f64,
) -> Value {
    json!({ "stage": stage, "epoch": epoch, "step": step, "loss": loss, "lr": lr, "images_per_s": images_per_s })
}
