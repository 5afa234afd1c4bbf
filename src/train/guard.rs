//! Guards against wrong answers reported as success: accuracy that counts ties and NaN as
//! misses, a stop at the first non-finite loss or gradient (naming the stage, the step and the
//! likely cause), step counts that cannot overflow, and sizes checked against memory before
//! anything is allocated.

use crate::params::ParamStore;
use crate::{Device, Error, Result};

/// Top-1 and top-k hits of one row of logits. A class scoring the same as the label, or any
/// comparison involving NaN, counts against the label: a constant or NaN model scores 0.
pub fn hits(row: &[f64], label: usize, k: usize) -> (bool, bool) {
    let target = row[label];
    if !target.is_finite() {
        return (false, false);
    }
    // Rank = number of other classes not strictly below the label's score.
    let rank = row
        .iter()
        .enumerate()
        .filter(|&(j, &v)| j != label && v.partial_cmp(&target) != Some(std::cmp::Ordering::Less))
        .count();
    (rank == 0, rank < k)
}

/// Stops training at the first non-finite loss, before the optimizer applies it (a GPU
/// pretraining step keeps its loss on the device: there, at the log line whose interval held
/// it); the last end-of-epoch state (all finite) stays on disk.
pub fn check_loss(stage: &str, step: usize, epoch: usize, loss: f64, lr: f64) -> Result<()> {
    if loss.is_finite() {
        return Ok(());
    }
    Err(Error::Diverged(format!(
        "{stage}: the loss is {loss} at step {} (epoch {}, learning rate {lr:.4e}); {}",
        step + 1,
        epoch + 1,
        LIKELY
    )))
}

const LIKELY: &str = "likely causes: a learning rate too high for this batch (lower --lr), \
a non-finite weight_decay or temperature in the config, or corrupt input data. The last \
end-of-epoch state and checkpoints were kept; nothing of this epoch was saved";

/// Stops training when a gradient holds NaN or infinity (checked on the CPU each step, where it
/// costs a pass over the gradients; a GPU run is caught by its loss or by `check_params`).
pub fn check_grads(stage: &str, step: usize, epoch: usize, store: &ParamStore) -> Result<()> {
    for id in store.ids() {
        let Some(g) = store.grad(id) else { continue };
        if g.device() != Device::Cpu {
            return Ok(());
        }
        if g.to_vec_f64()?.iter().any(|v| !v.is_finite()) {
            return Err(Error::Diverged(format!(
                "{stage}: the gradient of '{}' is not finite at step {} (epoch {}); {LIKELY}",
                store.name(id),
                step + 1,
                epoch + 1
            )));
        }
    }
    Ok(())
}

/// Refuses to save a state whose weights are not all finite.
pub fn check_params(stage: &str, step: usize, store: &ParamStore) -> Result<()> {
    for id in store.ids() {
        if store
            .value(id)?
            .to_vec_f64()?
            .iter()
            .any(|v| !v.is_finite())
        {
            return Err(Error::Diverged(format!(
                "{stage}: weight '{}' is not finite after step {step}; {LIKELY}",
                store.name(id)
            )));
        }
    }
    Ok(())
}

/// `epochs × batches per epoch`, refused when it overflows (it would silently give a zero
/// learning rate) or exceeds what a run can take.
pub fn total_steps(stage: &str, epochs: usize, per_epoch: usize) -> Result<usize> {
    const MAX: usize = 1 << 40;
    match epochs.checked_mul(per_epoch) {
        Some(t) if t <= MAX => Ok(t),
        _ => Err(Error::Config(format!(
            "{stage}: --epochs {epochs} with {per_epoch} steps per epoch is more than \
             {MAX} steps; allowed: a step count up to 2^40"
        ))),
    }
}

/// Host memory available to allocate, from /proc/meminfo (None where it cannot be read).
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Refuses an allocation of `count` items of `item_bytes` that overflows or exceeds the
/// host's available memory, naming the setting that asked for it.
pub fn check_alloc(what: &str, setting: &str, count: usize, item_bytes: usize) -> Result<()> {
    let avail = available_bytes();
    let bytes = count.checked_mul(item_bytes).map(|b| b as u64);
    match (bytes, avail) {
        (Some(b), Some(a)) if b <= a => Ok(()),
        (Some(b), None) if b <= (1u64 << 46) => Ok(()),
        _ => Err(Error::Config(format!(
            "{setting}: {what} needs {} but only {} of host memory is available",
            bytes.map_or("more than 2^64 bytes".to_string(), gib),
            avail.map_or("an unknown amount".to_string(), gib)
        ))),
    }
}

fn gib(b: u64) -> String {
    format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_and_nan_are_misses() {
        assert_eq!(hits(&[1.0, 1.0, 1.0], 0, 2), (false, false));
        assert_eq!(hits(&[f64::NAN; 3], 1, 3), (false, false));
        assert_eq!(hits(&[0.0, f64::NAN, 1.0], 2, 1), (false, false));
        assert_eq!(hits(&[0.0, 2.0, 1.0], 1, 1), (true, true));
        assert_eq!(hits(&[0.0, 2.0, 1.0], 2, 2), (false, true));
    }

    #[test]
    fn overflowing_step_counts_are_refused() {
        assert_eq!(total_steps("pretrain", 3, 4).unwrap(), 12);
        let e = total_steps("pretrain", 1 << 62, 8).unwrap_err().to_string();
        assert!(e.contains("--epochs 4611686018427387904"), "{e}");
    }

    #[test]
    fn huge_allocations_are_refused() {
        assert!(check_alloc("x", "--queue-size", 1 << 62, 8).is_err());
        assert!(check_alloc("x", "--queue-size", 100, 8).is_ok());
    }
}
