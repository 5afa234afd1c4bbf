//! Floor bytes vs moved bytes per step for the memory-bound kernel families that keep a tally
//! (src/cuda/traffic_floor.rs): `mark()` when a step starts, `describe()` after it. The floor
//! counts every input read once and every output written once. Achieved bandwidth needs
//! per-kernel device timing, which the emulated device cannot give and the bench does not yet
//! take on a GPU, so that column says why it is empty. A CUDA graph's replay runs no launcher,
//! so a step that recorded nothing is described by the last step that did (the captured one:
//! a replay launches exactly its kernels).

use crate::Device;

#[cfg(feature = "cuda")]
use crate::cuda::traffic_floor::{tallies, Tally, FAMILIES, N_FAMILIES};
#[cfg(feature = "cuda")]
use std::sync::Mutex;

/// The tallies at the last `mark()`, and the last marked step's own that launched any kernel.
#[cfg(feature = "cuda")]
struct Marks {
    at: Option<[Tally; N_FAMILIES]>,
    last_recorded: Option<[Tally; N_FAMILIES]>,
}

#[cfg(feature = "cuda")]
static MARK: Mutex<Marks> = Mutex::new(Marks {
    at: None,
    last_recorded: None,
});

/// The tallies since `start`, per family.
#[cfg(feature = "cuda")]
fn since(start: &[Tally; N_FAMILIES]) -> [Tally; N_FAMILIES] {
    let mut out = tallies();
    for (o, t) in out.iter_mut().zip(start) {
        *o = Tally {
            launches: o.launches - t.launches,
            floor: o.floor - t.floor,
            moved: o.moved - t.moved,
            old: o.old - t.old,
        };
    }
    out
}

/// Remembers the tallies at the start of a step (and the previous step's, if it recorded any).
pub fn mark() {
    #[cfg(feature = "cuda")]
    if let Ok(mut m) = MARK.lock() {
        if let Some(d) = m.at.as_ref().map(since) {
            if d.iter().any(|t| t.launches > 0) {
                m.last_recorded = Some(d);
            }
        }
        m.at = Some(tallies());
    }
}

/// The table of the kernels launched since the last `mark()`, one row per family.
pub fn describe(device: Device) -> String {
    #[cfg(feature = "cuda")]
    {
        if device == Device::Cpu {
            return "kernel bytes per step: none (CPU)".to_string();
        }
        let Some((step, replayed)) = MARK.lock().ok().and_then(|m| {
            let d = since(m.at.as_ref()?);
            match (d.iter().any(|t| t.launches > 0), m.last_recorded) {
                (false, Some(last)) => Some((last, true)),
                _ => Some((d, false)),
            }
        }) else {
            return "kernel bytes per step: no step was marked".to_string();
        };
        let timing = if crate::cuda::driver::mode() == crate::cuda::driver::Mode::Real {
            "n/a (no per-kernel timer yet)"
        } else {
            "n/a (emulated)"
        };
        let mb = |b: u64| b as f64 / 1e6;
        let mut s = format!(
            "kernel bytes per step{} (floor: each input read once, each output written once; \
             old: the kernels before issue 15; bandwidth ceiling 4.3 TB/s):\n  \
             {:<24} {:>8} {:>12} {:>12} {:>12} {:>11} {:>11}  {}",
            if replayed {
                " (as captured: the step was a CUDA graph replay)"
            } else {
                ""
            },
            "family",
            "launches",
            "floor MB",
            "moved MB",
            "old MB",
            "moved/floor",
            "old/floor",
            "achieved"
        );
        for (f, t) in FAMILIES.iter().zip(&step) {
            let (n, floor, moved, old) = (t.launches, t.floor, t.moved, t.old);
            let ratio = |v: u64| {
                if floor > 0 {
                    format!("{:.3}x", v as f64 / floor as f64)
                } else {
                    "-".to_string()
                }
            };
            s += &format!(
                "\n  {:<24} {:>8} {:>12.2} {:>12.2} {:>12.2} {:>11} {:>11}  {timing}",
                f.name(),
                n,
                mb(floor),
                mb(moved),
                mb(old),
                ratio(moved),
                ratio(old)
            );
        }
        s
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = device;
        "kernel bytes per step: none (no CUDA backend in this build)".to_string()
    }
}
