//! The output directory of a run: checkpoints, `config.toml` (the resolved configuration),
//! `metrics.jsonl` (one JSON object per logged step), TensorBoard event files under
//! `tensorboard/run-<id>/<stage>/`, `summary.json` (final metrics per stage, rewritten
//! atomically) and `metrics.png`.
//!
//! Every record carries a `run_id`: a new run into the same directory takes the next id (older
//! runs' records stay, marked as theirs), a `--resume` continues the last id, after dropping the
//! steps it is about to replay.

use super::tensorboard::EventWriter;
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
    run_id: u64,
    /// Event files, one per stage (TensorBoard's unit of comparison is a directory).
    events: std::collections::HashMap<String, EventWriter>,
    /// The last logged step of each stage, for records without one (test evaluations).
    last_step: std::collections::HashMap<String, i64>,
    _lock: Option<super::lock::RunLock>,
}

impl RunDir {
    /// Creates the directory if needed and proves it is writable before any training starts.
    pub fn open(path: &Path, resume: bool) -> Result<Self> {
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
        let last = last_run_id(&path.join("metrics.jsonl"));
        let run_id = match (resume, last) {
            (true, Some(id)) => id,
            (_, id) => id.map_or(1, |i| i + 1),
        };
        Ok(RunDir {
            path: path.to_path_buf(),
            metrics: Some(metrics),
            run_id,
            events: Default::default(),
            last_step: Default::default(),
            _lock: Some(lock),
        })
    }

    /// The run directory as a rank after 0 of a multi-process job sees it: it reads what rank 0
    /// wrote (a resumed state) and writes nothing; logging and summaries are no-ops.
    pub fn follower(path: &Path) -> Self {
        RunDir {
            path: path.to_path_buf(),
            metrics: None,
            run_id: 0,
            events: Default::default(),
            last_step: Default::default(),
            _lock: None,
        }
    }

    /// Whether this process writes the run's files.
    pub fn is_writer(&self) -> bool {
        self.metrics.is_some()
    }

    pub fn run_id(&self) -> u64 {
        self.run_id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Appends one metrics line (flushed, so a crash loses nothing already logged), tagged
    /// with the run id, and its numbers as TensorBoard scalars of its stage.
    pub fn log(&mut self, mut record: Value) -> Result<()> {
        record["run_id"] = json!(self.run_id);
        let p = self.path.join("metrics.jsonl");
        let Some(metrics) = self.metrics.as_mut() else {
            return Ok(());
        };
        writeln!(metrics, "{record}")
            .and_then(|_| metrics.flush())
            .map_err(|e| Error::io(p, e))?;
        self.log_events(&record)
    }

    fn events(&mut self, stage: &str, wall: f64) -> Result<&mut EventWriter> {
        Ok(match self.events.entry(stage.to_string()) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let dir = self
                    .path
                    .join("tensorboard")
                    .join(format!("run-{}", self.run_id))
                    .join(stage);
                v.insert(EventWriter::create(&dir, wall)?)
            }
        })
    }

    fn log_events(&mut self, record: &Value) -> Result<()> {
        let (Some(stage), Some(fields)) = (record["stage"].as_str(), record.as_object()) else {
            return Ok(());
        };
        let step = match record["step"].as_i64() {
            Some(s) => s,
            None => self.last_step.get(stage).copied().unwrap_or(0),
        };
        self.last_step.insert(stage.to_string(), step);
        let wall = now();
        let w = self.events(stage, wall)?;
        // Test-split evaluations are told apart from training losses by a prefix.
        let prefix = if record.get("eval").is_some() {
            "test_"
        } else {
            ""
        };
        for (k, v) in fields {
            if ["stage", "epoch", "step", "run_id"].contains(&k.as_str()) {
                continue;
            }
            if let Some(x) = v.as_f64() {
                w.scalar(wall, step, &format!("{prefix}{k}"), x as f32)?;
            }
        }
        Ok(())
    }

    /// Drops this run's records of `stage` after `step` (and its evaluations), which a resumed
    /// stage is about to log again: replayed steps must not appear twice.
    pub fn forget_after(&mut self, stage: &str, step: usize) -> Result<()> {
        if !self.is_writer() {
            return Ok(());
        }
        let p = self.path.join("metrics.jsonl");
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let run_id = self.run_id;
        let replayed = |l: &str| {
            serde_json::from_str::<Value>(l).is_ok_and(|r| {
                r["run_id"] == run_id
                    && r["stage"] == stage
                    && r["step"].as_u64().is_none_or(|s| s as usize > step)
            })
        };
        if step > 0 {
            // TensorBoard forgets the replayed steps too.
            self.events(stage, now())?
                .session_start(now(), step as i64 + 1)?;
        }
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

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The highest run id in a metrics file (records from before run ids count as run 0).
fn last_run_id(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| r["run_id"].as_u64().unwrap_or(0))
        .max()
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
