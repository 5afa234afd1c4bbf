//! Bytes each rewritten memory-bound kernel (batch norm, max-pool backward, selective-kernel
//! attention) must move (its floor: every input read once, every output
//! written once) and the bytes it does move, as functions of the shape, plus per-family tallies
//! of both that the launchers bump and `simclr bench --profile` prints per step.
//!
//! Conventions: n = M·C elements of e bytes each (2 for bf16, 4 for f32); per-channel vectors
//! are f32 (4·C bytes); g = row chunks of a reduction (src/cuda/groups.rs `chunks`), whose
//! fp32 partials (2·g·C) are written once and read once by the finishing block. `old` is what the
//! kernels before issue 15 moved for the same work (reductions in two passes, separate finish
//! and running-average kernels), kept for the predicted speed-up (old / floor).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Kernel families the bench reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Batch statistics (+ running averages): `batch_norm_stats`.
    BnStats,
    /// Normalise (+ residual + ReLU): `batch_norm_apply`.
    BnApply,
    /// Parameter-gradient sums (ReLU-masked or not): `batch_norm_reduce`.
    BnGradSums,
    /// Input gradient (+ residual gradient): `batch_norm_backward`.
    BnBackward,
    /// Max-pool input gradient: `max_pool2d_backward`.
    MaxPoolBackward,
    /// Average pools, forward and backward: `global_avg_pool_*`, `avg_pool2d_*`.
    AvgPool,
    /// Selective-kernel pool and mix: `sk_pool_forward`, `sk_mix_forward`.
    SkForward,
    /// Selective-kernel logit gradient and input gradient: `sk_mix_backward_dz`,
    /// `sk_backward_du`.
    SkBackward,
}

/// Number of families.
pub const N_FAMILIES: usize = 8;

pub const FAMILIES: [Family; N_FAMILIES] = [
    Family::BnStats,
    Family::BnApply,
    Family::BnGradSums,
    Family::BnBackward,
    Family::MaxPoolBackward,
    Family::AvgPool,
    Family::SkForward,
    Family::SkBackward,
];

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::BnStats => "bn statistics",
            Family::BnApply => "bn apply (+add, relu)",
            Family::BnGradSums => "bn gradient sums",
            Family::BnBackward => "bn backward apply",
            Family::MaxPoolBackward => "max-pool backward",
            Family::AvgPool => "avg pools",
            Family::SkForward => "sk pool + mix",
            Family::SkBackward => "sk backward",
        }
    }
}

/// Bytes of one launch: the floor, what it moves, and what the old kernels moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bytes {
    pub floor: u64,
    pub moved: u64,
    pub old: u64,
}

fn u(v: usize) -> u64 {
    v as u64
}

/// Statistics of [n/c, c] in e-byte elements over g chunks, with or without running averages.
pub fn bn_stats(n: usize, c: usize, e: usize, g: usize, running: bool) -> Bytes {
    let v = u(4 * c);
    let run = if running { 4 * v } else { 0 }; // read 2 old, write 2 new
    let floor = u(n * e) + 3 * v + run;
    // + the shift (row 0) per column of blocks and the partials written and read back.
    let moved = floor + u(g * c * e) + 2 * 2 * u(g * c * 4);
    // Two reductions (x, then x and mean) each writing g·C partials, two finish kernels, and
    // the running update as six elementwise kernels (scale, scale, add for each average).
    let old = 2 * u(n * e) + v + 2 * (2 * u(g * c * 4)) + 3 * v + if running { 14 * v } else { 0 };
    Bytes { floor, moved, old }
}

/// Apply over n elements: reads x (and the residual), writes y; parameters 4 vectors.
pub fn bn_apply(n: usize, c: usize, e: usize, residual: bool) -> Bytes {
    let floor = u(n * e) * (2 + u64::from(residual)) + 4 * u(4 * c);
    Bytes {
        floor,
        moved: floor,
        old: floor,
    }
}

/// Gradient sums: reads x, dy (and y for the ReLU mask), 2 statistics, writes 2 vectors.
pub fn bn_grad_sums(n: usize, c: usize, e: usize, g: usize, masked: bool) -> Bytes {
    let floor = u(n * e) * (2 + u64::from(masked)) + 4 * u(4 * c);
    let partials = 2 * 2 * u(g * c * 4);
    Bytes {
        floor,
        moved: floor + partials,
        // partials as now, through a second (finish) kernel
        old: floor + partials,
    }
}

/// Backward apply: reads dy (+ y for the mask) (+ x with batch statistics), writes dx (+ dres).
pub fn bn_backward(n: usize, c: usize, e: usize, masked: bool, batch: bool, dres: bool) -> Bytes {
    let tensors = 2 + u64::from(masked) + u64::from(dres) + u64::from(batch);
    let floor = u(n * e) * tensors + 6 * u(4 * c);
    // The old kernel read x whether or not it used it.
    let old = floor + if batch { 0 } else { u(n * e) };
    Bytes {
        floor,
        moved: floor,
        old,
    }
}

/// Max-pool backward from n_in inputs to n_out outputs with k x k windows at stride s: the
/// floor reads x and dy and writes dx; the kernel also reads the forward's output y. `old` here
/// counts bytes *requested* (every covering window's k² inputs re-read to re-derive its argmax,
/// ~(k/s)² windows per input), most of which hit in cache: a load-traffic ratio, not DRAM's.
pub fn max_pool_backward(n_in: usize, n_out: usize, e: usize, k: usize, s: usize) -> Bytes {
    let floor = u((2 * n_in + n_out) * e);
    let covering = (k * k) as f64 / (s * s).max(1) as f64;
    let rederive = (n_in as f64 * covering * (k * k) as f64) as u64 * u(e);
    Bytes {
        floor,
        moved: floor + u(n_out * e),
        old: floor + rederive,
    }
}

/// A kernel that reads and writes `elements` e-byte elements once in all, as it did before
/// issue 15 (old = moved = floor): the pools, whose gain is in the access width alone.
pub fn one_pass(elements: usize, e: usize) -> Bytes {
    let floor = u(elements * e);
    Bytes {
        floor,
        moved: floor,
        old: floor,
    }
}

/// Shape of one selective-kernel attention: n images of hw pixels, c channels per path (u is
/// [n, hw, 2c], y and dy [n, hw, c], z and dz [n, 2c], s and ds [n, c]), e bytes per element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkShape {
    pub n: usize,
    pub hw: usize,
    pub c: usize,
    pub e: usize,
}

impl SkShape {
    /// Bytes of y (half of u).
    fn y(&self) -> u64 {
        u(self.n * self.hw * self.c * self.e)
    }
    /// Bytes of z (2c per image; ds and s are half of it).
    fn z(&self) -> u64 {
        u(self.n * 2 * self.c * self.e)
    }
}

/// The pool: reads u, writes s. One pass, as before issue 15 (old = floor).
pub fn sk_pool_forward(s: SkShape) -> Bytes {
    let floor = 2 * s.y() + s.z() / 2;
    Bytes {
        floor,
        moved: floor,
        old: floor,
    }
}

/// The mix: reads u and z, writes y. One pass, as before issue 15 (old = floor).
pub fn sk_mix_forward(s: SkShape) -> Bytes {
    let floor = 2 * s.y() + s.z() + s.y();
    Bytes {
        floor,
        moved: floor,
        old: floor,
    }
}

/// The logit gradient, first launch of the backward: reads u, dy, z, writes dz. The floor of
/// the whole backward (each of u, dy, z, ds read once, du and dz written once) is split over its
/// two launches by charging each tensor to the first launch that touches it, so the floors of
/// [`sk_backward_dz`] and [`sk_backward_du`] add up to [`sk_backward`]'s.
pub fn sk_backward_dz(s: SkShape) -> Bytes {
    let floor = 2 * s.y() + s.y() + 2 * s.z();
    Bytes {
        floor,
        moved: floor,
        old: floor,
    }
}

/// All of du in one pass: reads dy and z when the mix's gradient is there (`mix`), ds when the
/// pool's is (`pool`), writes du. After [`sk_backward_dz`] only ds and du are new to the floor.
/// With both terms, `old` is what the old kernels moved for them: the mix's du, the pool's du
/// and the tape adding the two.
pub fn sk_backward_du(s: SkShape, mix: bool, pool: bool, after_dz: bool) -> Bytes {
    let du = 2 * s.y();
    let (mix_in, ds) = (s.y() + s.z(), s.z() / 2);
    let moved = du + if mix { mix_in } else { 0 } + if pool { ds } else { 0 };
    let floor = if after_dz { du + ds } else { moved };
    let old = match mix && pool {
        true => (mix_in + du) + (ds + du) + 3 * du,
        false => moved,
    };
    Bytes { floor, moved, old }
}

/// The whole backward of the linked pair (src/ops/sk), and what the kernels before issue 15
/// moved for it: the mix's du (dy, z → du), its dz (u, dy, z → dz), the pool's du (ds → du) and
/// the tape adding the two du (two reads, one write).
pub fn sk_backward(s: SkShape) -> Bytes {
    let (a, b) = (sk_backward_dz(s), sk_backward_du(s, true, true, true));
    Bytes {
        floor: a.floor + b.floor,
        moved: a.moved + b.moved,
        old: a.old + b.old,
    }
}

/// Per-family totals since the process started: launches, floor bytes, moved bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub launches: u64,
    pub floor: u64,
    pub moved: u64,
    pub old: u64,
}

#[allow(clippy::declare_interior_mutable_const)] // a template for the array, never used alone
const ZERO: [AtomicU64; 4] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];
static TALLY: [[AtomicU64; 4]; N_FAMILIES] = [ZERO; N_FAMILIES];

fn slot(f: Family) -> usize {
    FAMILIES.iter().position(|&x| x == f).unwrap_or(0)
}

/// Counts one launch of `f` moving `b`.
pub fn record(f: Family, b: Bytes) {
    let t = &TALLY[slot(f)];
    t[0].fetch_add(1, Relaxed);
    t[1].fetch_add(b.floor, Relaxed);
    t[2].fetch_add(b.moved, Relaxed);
    t[3].fetch_add(b.old, Relaxed);
}

/// The tallies now, in the order of [`FAMILIES`].
pub fn tallies() -> [Tally; N_FAMILIES] {
    let mut out = [Tally::default(); N_FAMILIES];
    for (o, t) in out.iter_mut().zip(&TALLY) {
        *o = Tally {
            launches: t[0].load(Relaxed),
            floor: t[1].load(Relaxed),
            moved: t[2].load(Relaxed),
            old: t[3].load(Relaxed),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_count_each_tensor_once() {
        // 1,000 x 64 bf16: x once plus mean, invstd, var and the running averages.
        assert_eq!(
            bn_stats(64_000, 64, 2, 1, true).floor,
            128_000 + 3 * 256 + 4 * 256
        );
        assert_eq!(bn_apply(64_000, 64, 2, true).floor, 3 * 128_000 + 4 * 256);
        assert_eq!(
            bn_backward(64_000, 64, 2, true, true, true).floor,
            5 * 128_000 + 6 * 256
        );
        let s = bn_stats(64_000, 64, 2, 16, false);
        assert!(s.moved >= s.floor && s.old > s.moved);
    }

    #[test]
    fn sk_backward_reads_dy_twice_where_the_floor_reads_it_once() {
        // u is 2 x 10 x 16 bf16 per image (640 B), dy 320 B, z 64 B, ds 32 B.
        let s = SkShape {
            n: 1,
            hw: 10,
            c: 16,
            e: 2,
        };
        let b = sk_backward(s);
        assert_eq!(b.floor, 640 + 320 + 64 + 32 + 640 + 64);
        assert_eq!(b.moved, b.floor + 320 + 64);
        // mix du 320 + 64 + 640, dz 640 + 320 + 128, pool du 32 + 640, add 3 x 640.
        assert_eq!(b.old, 1024 + 1088 + 672 + 1920);
        assert_eq!(sk_mix_forward(s).floor, 640 + 64 + 320);
    }
}
