//! Tensor memory accounting: every storage adds its size to a per-device counter while it
//! lives, so the bytes held by tensors (and their high-water mark) can be read
//! at any time on any backend. This is what `simclr bench` reports as tensor memory, and what the
//! memory planner fits its per-image cost to. Device memory that is not a tensor (cuDNN and
//! cuBLAS workspaces, the pool's slack) is read from the CUDA pool instead (`crate::cuda`).

use super::{Device, Storage};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Slot 0 is the host; slot 1 + i is CUDA device i (more devices share the last slot).
const SLOTS: usize = 17;

static CURRENT: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static PEAK: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];

fn slot(device: Device) -> usize {
    match device {
        Device::Cpu => 0,
        Device::Cuda(i) => (1 + i).min(SLOTS - 1),
    }
}

/// Bytes held by live tensors on `device`.
pub fn current_bytes(device: Device) -> usize {
    CURRENT[slot(device)].load(Ordering::Relaxed)
}

/// The most bytes held by live tensors on `device` since the last [`reset_peak`].
pub fn peak_bytes(device: Device) -> usize {
    PEAK[slot(device)].load(Ordering::Relaxed)
}

/// Starts a new high-water mark at the current level.
pub fn reset_peak(device: Device) {
    let s = slot(device);
    PEAK[s].store(CURRENT[s].load(Ordering::Relaxed), Ordering::Relaxed);
}

/// A storage whose bytes count on its device from creation to drop. Tensors share one through
/// an `Arc`; copy-on-write (`Arc::make_mut`) clones it, and the clone counts itself.
#[derive(Debug)]
pub(crate) struct Counted {
    pub(crate) storage: Storage,
    slot: usize,
    bytes: usize,
}

impl Counted {
    pub(crate) fn new(storage: Storage) -> Self {
        let bytes = storage_bytes(&storage);
        let s = slot(storage.device());
        let now = CURRENT[s].fetch_add(bytes, Ordering::Relaxed) + bytes;
        PEAK[s].fetch_max(now, Ordering::Relaxed);
        Counted {
            storage,
            slot: s,
            bytes,
        }
    }
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        Counted::new(self.storage.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        CURRENT[self.slot].fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

fn storage_bytes(storage: &Storage) -> usize {
    let len = match storage {
        Storage::Cpu(s) => s.len(),
        Storage::Device(s) => s.len(),
    };
    len * storage.dtype().size_in_bytes()
}

#[cfg(test)]
mod tests {
    // Unit tests share the process with tests that allocate concurrently, so exact counts are
    // checked in tests/memory_accounting.rs (a test binary with a single test).
    use super::*;

    #[test]
    fn devices_map_to_their_own_slots() {
        assert_eq!(slot(Device::Cpu), 0);
        assert_eq!(slot(Device::Cuda(0)), 1);
        assert_eq!(slot(Device::Cuda(3)), 4);
        assert_eq!(slot(Device::Cuda(99)), SLOTS - 1);
    }
}
