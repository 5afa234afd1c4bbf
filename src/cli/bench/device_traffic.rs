//! What one steady-state step sends across the host/device boundary, counted exactly by the
//! CUDA driver layer (`crate::cuda::driver::counters`): kernel launches, library calls,
//! host↔device copies, synchronisations and allocations. Without the `cuda` feature there is
//! nothing to count.

use crate::Device;

#[cfg(feature = "cuda")]
pub type Snapshot = crate::cuda::driver::Counters;
/// Nothing to count without the CUDA backend.
#[cfg(not(feature = "cuda"))]
#[derive(Clone, Copy, Debug)]
pub struct Snapshot;

pub fn snapshot() -> Snapshot {
    #[cfg(feature = "cuda")]
    {
        crate::cuda::driver::counters()
    }
    #[cfg(not(feature = "cuda"))]
    {
        Snapshot
    }
}

/// The counts since `before`, when this build counts anything.
pub fn since(before: Snapshot) -> Option<Snapshot> {
    #[cfg(feature = "cuda")]
    {
        Some(crate::cuda::driver::counters().since(&before))
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = before;
        None
    }
}

/// One line for the bench's report (the last timed step, which ends before the bench's own
/// wait for the device).
pub fn describe(t: &Snapshot, device: Device) -> String {
    #[cfg(feature = "cuda")]
    {
        if device == Device::Cpu {
            return "device traffic per step: none (CPU)".to_string();
        }
        format!(
            "device traffic per step ({device}{}): {} graph launches, {} kernel launches, {} library calls, \
             {} uploads ({:.1} MiB), {} downloads ({:.3} MiB), {} device-to-device copies, \
             {} host synchronisations, {} allocations",
            if crate::cuda::driver::mode() == crate::cuda::driver::Mode::Real {
                ""
            } else {
                ", emulated"
            },
            t.graph_launches,
            t.launches,
            t.library_calls,
            t.uploads,
            t.upload_bytes as f64 / (1u64 << 20) as f64,
            t.downloads,
            t.download_bytes as f64 / (1u64 << 20) as f64,
            t.device_copies,
            t.synchronizations,
            t.allocations,
        )
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (t, device);
        "device traffic per step: none (CPU)".to_string()
    }
}
