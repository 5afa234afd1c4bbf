//! Exact counts of what crosses the host/device boundary: kernel launches (ours and the
//! libraries' calls that run work on the device), host↔device copies and host
//! synchronisations. Kept in both modes; `simclr bench --profile` prints them per step.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Our kernels (cuLaunchKernel).
    pub launches: u64,
    /// cuBLAS, cuDNN and NCCL calls that enqueue work.
    pub library_calls: u64,
    pub uploads: u64,
    pub upload_bytes: u64,
    pub downloads: u64,
    pub download_bytes: u64,
    pub device_copies: u64,
    /// Stream or device synchronisations (the host waits for the device).
    pub synchronizations: u64,
    /// Stream-ordered allocations.
    pub allocations: u64,
    /// CUDA graph launches (the work inside a graph is not counted in `launches`).
    pub graph_launches: u64,
}

impl Counters {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            launches: self.launches - earlier.launches,
            library_calls: self.library_calls - earlier.library_calls,
            uploads: self.uploads - earlier.uploads,
            upload_bytes: self.upload_bytes - earlier.upload_bytes,
            downloads: self.downloads - earlier.downloads,
            download_bytes: self.download_bytes - earlier.download_bytes,
            device_copies: self.device_copies - earlier.device_copies,
            synchronizations: self.synchronizations - earlier.synchronizations,
            allocations: self.allocations - earlier.allocations,
            graph_launches: self.graph_launches - earlier.graph_launches,
        }
    }
}

pub(crate) static LAUNCHES: AtomicU64 = AtomicU64::new(0);
pub(crate) static LIBRARY_CALLS: AtomicU64 = AtomicU64::new(0);
pub(crate) static UPLOADS: AtomicU64 = AtomicU64::new(0);
pub(crate) static UPLOAD_BYTES: AtomicU64 = AtomicU64::new(0);
pub(crate) static DOWNLOADS: AtomicU64 = AtomicU64::new(0);
pub(crate) static DOWNLOAD_BYTES: AtomicU64 = AtomicU64::new(0);
pub(crate) static DEVICE_COPIES: AtomicU64 = AtomicU64::new(0);
pub(crate) static SYNCHRONIZATIONS: AtomicU64 = AtomicU64::new(0);
pub(crate) static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
pub(crate) static GRAPH_LAUNCHES: AtomicU64 = AtomicU64::new(0);

pub(crate) fn bump(c: &AtomicU64, by: u64) {
    c.fetch_add(by, Relaxed);
}

/// The counts since the process started (all devices together).
pub fn counters() -> Counters {
    Counters {
        launches: LAUNCHES.load(Relaxed),
        library_calls: LIBRARY_CALLS.load(Relaxed),
        uploads: UPLOADS.load(Relaxed),
        upload_bytes: UPLOAD_BYTES.load(Relaxed),
        downloads: DOWNLOADS.load(Relaxed),
        download_bytes: DOWNLOAD_BYTES.load(Relaxed),
        device_copies: DEVICE_COPIES.load(Relaxed),
        synchronizations: SYNCHRONIZATIONS.load(Relaxed),
        allocations: ALLOCATIONS.load(Relaxed),
        graph_launches: GRAPH_LAUNCHES.load(Relaxed),
    }
}
