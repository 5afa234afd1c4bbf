//! Memory planning: will a training configuration fit, and if not, what would?
//!
//! Rather than model every op's buffers by hand, the planner *measures*: it runs the step's
//! forward + backward at two small sizes, reads the peak memory of each (tensor bytes on the
//! CPU; the CUDA pool's high-water mark on a GPU, which includes cuDNN and cuBLAS workspaces),
//! and fits `peak = fixed + rows · per_row`. Activation memory is linear in the rows of the
//! (micro-)batch, so two probes determine the line; the fixed part (weights, gradients) is
//! measured too. What the probes do not allocate (optimizer state, created on the first update,
//! and the whole batch's projections under gradient caching) is added from its size.
//! `simclr bench` checks the plan before its first step and reports the prediction beside
//! the measured peak.

use crate::params::ParamStore;
use crate::{Device, Error, Result};

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

/// A straight-line model of peak memory against the rows of the (micro-)batch.
#[derive(Clone, Debug)]
pub struct MemoryPlan {
    /// Bytes that do not grow with the batch: what the probes measured at zero rows plus
    /// `extra_fixed` (optimizer state not yet allocated).
    pub fixed: f64,
    /// Bytes per row of the micro-batch live at once (activations saved for backward).
    pub per_row: f64,
    /// Bytes per row of the whole batch (projections and their gradients under gradient caching).
    pub per_batch_row: f64,
    /// The measurements: (rows, peak bytes).
    pub probes: Vec<(usize, usize)>,
}

impl MemoryPlan {
    /// Fits the line through two probes (rows, peak bytes) taken at different row counts.
    pub fn fit(probes: &[(usize, usize)], extra_fixed: usize, per_batch_row: f64) -> Result<Self> {
        let [(r1, p1), (r2, p2)] = probes else {
            return Err(Error::Config(
                "the memory plan needs exactly two probes".into(),
            ));
        };
        if r1 == r2 {
            return Err(Error::Config(
                "the memory probes need two different sizes".into(),
            ));
        }
        // Peaks can only grow with the batch; a smaller second peak is noise, not a saving.
        let per_row = ((*p2 as f64 - *p1 as f64) / (*r2 as f64 - *r1 as f64)).max(0.0);
        let fixed = (*p1 as f64 - per_row * *r1 as f64).max(0.0) + extra_fixed as f64;
        Ok(MemoryPlan {
            fixed,
            per_row,
            per_batch_row,
            probes: probes.to_vec(),
        })
    }

    /// Predicted peak bytes of a step over `rows` rows, `live_rows` of them at a time.
    pub fn predict(&self, rows: usize, live_rows: usize) -> f64 {
        self.fixed + self.per_row * live_rows.min(rows) as f64 + self.per_batch_row * rows as f64
    }

    /// The most rows (all live at once) that fit in `budget` bytes; 0 if none does.
    pub fn largest_batch(&self, budget: f64) -> usize {
        let room = budget - self.fixed;
        let per = self.per_row + self.per_batch_row;
        if room <= 0.0 {
            0
        } else if per <= 0.0 {
            usize::MAX
        } else {
            (room / per).floor() as usize
        }
    }

    /// The most rows live at once that fit with `rows` rows in the whole batch; 0 if none.
    pub fn largest_micro_batch(&self, rows: usize, budget: f64) -> usize {
        let room = budget - self.fixed - self.per_batch_row * rows as f64;
        if room <= 0.0 {
            0
        } else if self.per_row <= 0.0 {
            rows
        } else {
            ((room / self.per_row).floor() as usize).min(rows)
        }
    }
}

/// How much memory a step may use, and where that figure came from.
#[derive(Clone, Debug)]
pub struct Budget {
    pub bytes: f64,
    pub source: String,
}

impl Budget {
    /// The memory a step on `device` can have: an explicit limit in GiB if given, otherwise
    /// what the device (or the host) has available now, plus what our tensors already hold.
    pub fn for_device(device: Device, limit_gib: Option<f64>) -> Result<Self> {
        if let Some(g) = limit_gib {
            if !(g > 0.0 && g.is_finite()) {
                return Err(Error::Config(format!(
                    "--memory-limit must be a positive number of GiB, got {g}"
                )));
            }
            return Ok(Budget {
                bytes: g * GIB,
                source: format!("the --memory-limit of {g} GiB"),
            });
        }
        match device {
            Device::Cpu => {
                let avail = host_available_bytes()?;
                let ours = crate::tensor::memory::current_bytes(Device::Cpu) as f64;
                Ok(Budget {
                    bytes: avail + ours,
                    source: format!("the host ({:.1} GiB available)", avail / GIB),
                })
            }
            #[cfg(feature = "cuda")]
            Device::Cuda(i) => {
                let m = crate::cuda::memory::device_memory(i)?;
                // Keep 2% back: the pool fragments, and the context itself takes some.
                let usable = (m.free + m.pool_reserved) as f64 * 0.98;
                Ok(Budget {
                    bytes: usable,
                    source: format!(
                        "cuda:{i} ({:.1} GiB free of {:.1} GiB, {:.1} GiB in our pool)",
                        m.free as f64 / GIB,
                        m.total as f64 / GIB,
                        m.pool_reserved as f64 / GIB
                    ),
                })
            }
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(_) => Err(Error::device(
                "memory_plan",
                crate::cuda_unavailable_reason(),
            )),
        }
    }
}

/// MemAvailable from /proc/meminfo (Linux); elsewhere no limit is known.
fn host_available_bytes() -> Result<f64> {
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
        return Ok(f64::INFINITY);
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("MemAvailable:") {
            let kib: f64 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .map_err(|_| Error::Config(format!("unreadable /proc/meminfo line '{line}'")))?;
            return Ok(kib * 1024.0);
        }
    }
    Ok(f64::INFINITY)
}

/// Runs `f` and returns the peak memory it reached on `device`: tensor bytes on the CPU, the
/// pool's high-water mark on a GPU (tensors plus library workspaces).
pub fn measure_peak(device: Device, f: impl FnOnce() -> Result<()>) -> Result<usize> {
    match device {
        Device::Cpu => {
            crate::tensor::memory::reset_peak(device);
            f()?;
            Ok(crate::tensor::memory::peak_bytes(device))
        }
        #[cfg(feature = "cuda")]
        Device::Cuda(i) => {
            crate::cuda::memory::reset_pool_peak(i)?;
            f()?;
            Ok(crate::cuda::memory::device_memory(i)?.pool_used_peak)
        }
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => Err(Error::device(
            "memory_plan",
            crate::cuda_unavailable_reason(),
        )),
    }
}

/// Runs `step(store, rows)` (forward + backward, no update) at `k` and `2k` images of
/// `rows_per_image` rows, k an eighth of `batch_size` between 1 and 4, measures each peak and
/// fits the plan. Larger probes extrapolate better (on the CPU the peak per row creeps up by
/// about 10% from 2 to 128 rows) but cost time and must themselves fit. the store is left as it was
/// (gradients zeroed, BN running statistics restored). The optimizer's state (LARS: one
/// momentum buffer per trainable tensor) is added to the fixed part.
///
/// On a GPU each size runs once unmeasured first: a convolution shape's first call runs
/// cuDNN's algorithm search, whose workspace (the largest any algorithm asks for, src/cuda/dnn.rs) is freed after it
/// and never taken again, so only a second call is a steady-state step. Without that run, a
/// probe whose shapes were chosen earlier (kept on disk) and one whose were not differed by the
/// workspace: on the emulated device, r18_0.25x_sk1 at 32 px was planned at 64.9 MiB per image
/// instead of 1.0 (tests/cuda_memory_plan.rs).
pub fn probe(
    store: &mut ParamStore,
    device: Device,
    batch_size: usize,
    rows_per_image: usize,
    per_batch_row: f64,
    mut step: impl FnMut(&mut ParamStore, usize) -> Result<()>,
) -> Result<MemoryPlan> {
    let saved = super::grad_cache::running_stats(store);
    let mut probes = Vec::new();
    let k = (batch_size / 8).clamp(1, 4);
    for images in [k, 2 * k] {
        let rows = images * rows_per_image;
        if matches!(device, Device::Cuda(_)) {
            step(store, rows)?;
            store.zero_grads();
        }
        let peak = measure_peak(device, || step(store, rows))?;
        store.zero_grads();
        probes.push((rows, peak));
    }
    for (id, t) in saved {
        store.set_value(id, t)?;
    }
    let state: usize = store
        .ids()
        .filter(|&id| store.is_trainable(id))
        .filter_map(|id| store.value(id).ok())
        .map(|t| t.numel() * t.dtype().size_in_bytes())
        .sum();
    MemoryPlan::fit(&probes, state, per_batch_row)
}

/// Bytes per row of the whole batch under gradient caching: the batch's images (the input and
/// its split into micro-batches, f32) and its projections, normalised projections and their
/// gradient (f32). Counted whether or not caching is on, so that the micro-batch a plan
/// suggests is the one it accepts.
pub fn contrastive_batch_row_bytes(image_size: usize, channels: usize, proj_dim: usize) -> f64 {
    (2 * image_size * image_size * channels * 4 + 4 * 4 * proj_dim) as f64
}

/// What the step is, for the messages.
pub struct StepShape<'a> {
    pub what: &'a str,
    /// Rows through the encoder per step (2 × batch for two views).
    pub rows: usize,
    /// Rows per micro-batch, if gradient caching is on.
    pub micro: Option<usize>,
    /// Rows per image of the user's batch (2 for pretraining's two views).
    pub rows_per_image: usize,
}

/// Errors before the first step when the plan does not fit the budget, saying what would.
pub fn check_fits(plan: &MemoryPlan, step: &StepShape, budget: &Budget) -> Result<f64> {
    let live = step.micro.unwrap_or(step.rows).min(step.rows);
    let need = plan.predict(step.rows, live);
    if need <= budget.bytes {
        return Ok(need);
    }
    let per_img = step.rows_per_image.max(1);
    let mut msg = format!(
        "{} needs about {:.2} GiB: {:.2} GiB that does not grow with the batch (weights, gradients, \
         optimizer state) + {:.1} MiB per image live at once",
        step.what,
        need / GIB,
        plan.fixed / GIB,
        plan.per_row * per_img as f64 / MIB,
    );
    if plan.per_batch_row > 0.0 {
        msg += &format!(
            " + {:.1} KiB per image of the whole batch",
            plan.per_batch_row * per_img as f64 / 1024.0
        );
    }
    msg += &format!("; {} allows {:.3} GiB. ", budget.source, budget.bytes / GIB);
    let whole = plan.largest_batch(budget.bytes) / per_img;
    let micro = plan.largest_micro_batch(step.rows, budget.bytes);
    if plan.fixed > budget.bytes {
        msg += "Even the weights, gradients and optimizer state do not fit: use a smaller model.";
    } else if micro >= per_img {
        msg += &format!(
            "Largest batch without micro-batching: {whole}. At this batch size, \
             --micro-batch {} (images) or smaller fits.",
            micro / per_img
        );
    } else {
        msg += &format!(
            "Largest batch without micro-batching: {whole}; this batch does not fit even with \
             micro-batching (its projections alone are too big)."
        );
    }
    Err(Error::OutOfMemory(msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> MemoryPlan {
        // 100 MiB fixed, 10 MiB per row, 1 KiB per batch row.
        MemoryPlan::fit(&[(2, 120 << 20), (4, 140 << 20)], 0, 1024.0).unwrap()
    }

    #[test]
    fn the_line_goes_through_both_probes() {
        let p = plan();
        assert_eq!(p.per_row, 10.0 * MIB);
        assert_eq!(p.fixed, 100.0 * MIB);
        assert_eq!(p.predict(8, 8), (180 << 20) as f64 + 8.0 * 1024.0);
        assert_eq!(p.predict(64, 8), (180 << 20) as f64 + 64.0 * 1024.0);
    }

    #[test]
    fn largest_sizes_fit_and_one_more_does_not() {
        let p = plan();
        let budget = 1000.0 * MIB;
        let b = p.largest_batch(budget);
        assert!(p.predict(b, b) <= budget && p.predict(b + 1, b + 1) > budget);
        let m = p.largest_micro_batch(10_000, budget);
        assert!(m > 0 && m < 10_000);
        assert!(p.predict(10_000, m) <= budget && p.predict(10_000, m + 1) > budget);
    }

    #[test]
    fn a_step_that_does_not_fit_says_what_would() {
        let p = plan();
        let budget = Budget {
            bytes: 1000.0 * MIB,
            source: "a test budget".into(),
        };
        let step = StepShape {
            what: "the test step",
            rows: 2000,
            micro: None,
            rows_per_image: 2,
        };
        let e = check_fits(&p, &step, &budget).unwrap_err().to_string();
        assert!(
            e.contains("Largest batch without micro-batching: 44"),
            "{e}"
        );
        assert!(e.contains("--micro-batch 44 (images)"), "{e}");
        let ok = StepShape {
            micro: Some(88),
            ..step
        };
        assert!(check_fits(&p, &ok, &budget).is_ok());
        let too_small = Budget {
            bytes: 50.0 * MIB,
            ..budget
        };
        let e = check_fits(&p, &ok, &too_small).unwrap_err().to_string();
        assert!(e.contains("use a smaller model"), "{e}");
    }

    #[test]
    fn bad_probes_and_limits_are_errors() {
        assert!(MemoryPlan::fit(&[(2, 1), (2, 5)], 0, 0.0).is_err());
        assert!(MemoryPlan::fit(&[(2, 1)], 0, 0.0).is_err());
        assert!(Budget::for_device(Device::Cpu, Some(-1.0)).is_err());
        assert!(Budget::for_device(Device::Cpu, Some(f64::NAN)).is_err());
        assert!(Budget::for_device(Device::Cpu, None).unwrap().bytes > 0.0);
    }
}
