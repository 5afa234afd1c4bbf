//! What a bench leaves for bench/table.py beside criterion's own estimates: one JSON line per
//! case with its device, dtype, work, floor and the shapes the PyTorch script needs to time the
//! same thing.

use super::floor::{ceilings, Work};
use serde_json::{json, Value};
use simclr::{DType, Device};
use std::io::Write;
use std::path::PathBuf;

/// Where cases are written: $SIMCLR_BENCH_DIR, else $CRITERION_HOME, else target/criterion (the
/// benches run in the package root under `cargo bench`).
pub fn bench_dir() -> PathBuf {
    std::env::var_os("SIMCLR_BENCH_DIR")
        .or_else(|| std::env::var_os("CRITERION_HOME"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

pub const CASES_FILE: &str = "simclr-cases.jsonl";

/// One benchmark: criterion's id is `group/function/param`.
pub struct Case {
    /// Kernel and device, e.g. `ntxent-cuda`; the PyTorch script keys on (group, param).
    pub group: String,
    /// `fused`, `unfused`, or `step`.
    pub function: &'static str,
    pub param: String,
    pub device: Device,
    pub dtype: DType,
    pub work: Work,
    /// Shapes and settings, enough for the PyTorch script to build the same inputs.
    pub spec: Value,
}

impl Case {
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.group, self.function, self.param)
    }

    fn device_name(&self) -> &'static str {
        match self.device {
            Device::Cpu => "cpu",
            Device::Cuda(_) => "cuda",
        }
    }

    /// Prints our median per-iteration time against the floor and appends the case to
    /// `simclr-cases.jsonl`; `skipped` says why a case was not timed.
    pub fn report(&self, median_s: Option<f64>, skipped: Option<String>) {
        let c = ceilings(self.device);
        let floor = self.work.floor_seconds(c);
        match (median_s, &skipped) {
            (Some(t), _) => println!(
                "{}: ours {} | floor {} ({}-bound; {:.3e} FLOP, {:.3e} B; {}) | ours/floor {:.2}",
                self.id(),
                fmt_s(t),
                fmt_s(floor),
                self.work.bound(c),
                self.work.flops,
                self.work.bytes,
                c.source,
                t / floor
            ),
            (None, Some(why)) => println!("{}: skipped: {why}", self.id()),
            (None, None) => return,
        }
        let line = json!({
            "id": self.id(),
            "group": self.group,
            "function": self.function,
            "param": self.param,
            "device": self.device_name(),
            "dtype": self.dtype.name(),
            "flops": self.work.flops,
            "bytes": self.work.bytes,
            "floor_s": floor,
            "bound": self.work.bound(c),
            "ceilings": {"flops": c.flops, "bytes_per_s": c.bytes_per_s, "source": c.source},
            "median_s": median_s,
            "skipped": skipped,
            "spec": self.spec,
        });
        let dir = bench_dir();
        let written = std::fs::create_dir_all(&dir).and_then(|_| {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(CASES_FILE))?;
            writeln!(f, "{line}")
        });
        if let Err(e) = written {
            eprintln!("could not write {}: {e}", dir.join(CASES_FILE).display());
        }
    }
}

/// Seconds in the unit that keeps three significant digits readable.
pub fn fmt_s(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.2} µs", s * 1e6)
    }
}
