//! Floor bytes vs moved bytes per step for the memory-bound kernel families that keep a tally
//! (src/cuda/traffic_floor.rs): `mark()` when a step starts, `describe()` after it. The floor
//! counts every input read once and every output written once. Achieved bandwidth needs
//! per-kernel device timing, which the emulated device cannot give and the bench does not yet
//! take on a GPU, so that column says why it is empty.

use crate::Device;

#[cfg(feature = "cuda")]
use crate::cuda::traffic_floor::{tallies, Tally, FAMILIES, N_FAMILIES};
#[cfg(feature = "cuda")]
use std::sync::Mutex;

#[cfg(feature = "cuda")]
static MARK: Mutex<Option<[Tally; N_FAMILIES]>> = Mutex::new(None);

/// Remembers the tallies at the start of a step.
pub fn mark() {
    #[cfg(feature = "cuda")]
    if let Ok(mut m) = MARK.lock() {
        *m = Some(tallies());
    }
}

/// The table of the kernels launched since the last `mark()`, one row per family.
pub fn describe(device: Device) -> String {
    #[cfg(feature = "cuda")]
    {
        if device == Device::Cpu {
            return "kernel bytes per step: none (CPU)".to_string();
        }
        let Some(start) = MARK.lock().ok().and_then(|m| *m) else {
            return "kernel bytes per step: no step was marked".to_string();
        };
        let timing = if crate::cuda::driver::mode() == crate::cuda::driver::Mode::Real {
            "n/a (no per-kernel timer yet)"
        } else {
            "n/a (emulated)"
        };
        let mb = |b: u64| b as f64 / 1e6;
        let mut s = format!(
            "kernel bytes per step (floor: each input read once, each output written once; \
             old: the kernels before issue 15; bandwidth ceiling 4.3 TB/s):\n  \
             {:<24} {:>8} {:>12} {:>12} {:>12} {:>11} {:>11}  {}",
            "family",
            "launches",
            "floor MB",
            "moved MB",
            "old MB",
            "moved/floor",
            "old/floor",
            "achieved"
        );
        for (f, (now, then)) in FAMILIES.iter().zip(tallies().iter().zip(&start)) {
            let (n, floor, moved, old) = (
                now.launches - then.launches,
                now.floor - then.floor,
                now.moved - then.moved,
                now.old - then.old,
            );
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
