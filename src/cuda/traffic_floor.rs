//! Bytes each rewritten memory-bound kernel (batch norm, max-pool backward, average pools,
//! selective-kernel attention) must move (its floor: every input read once, every output
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

/// Where a BN + ReLU backward takes its ReLU mask from; the values are kernels/bn.cuh's MASK_*.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mask {
    /// No ReLU.
    Off = 0,
    /// The saved output y (with a residual: y depends on it too): one more tensor read.
    FromOutput = 1,
    /// The pre-activation recomputed from x, which is read anyway: gamma and beta instead of y.
    FromInput = 2,
}

impl Mask {
    /// Bytes read for the mask alone: y, or the per-channel vectors not read otherwise
    /// (`params` of them: gamma and beta for the sums, beta for the apply).
    fn reads(self, n: usize, e: usize, c: usize, params: usize) -> u64 {
        match self {
            Mask::Off => 0,
            Mask::FromOutput => u(n * e),
            Mask::FromInput => u(params * 4 * c),
        }
    }
}

/// Gradient sums: reads x, dy (and what the ReLU mask needs), 2 statistics, writes 2 vectors.
/// The kernels before issue 15 read y for every mask.
pub fn bn_grad_sums(n: usize, c: usize, e: usize, g: usize, mask: Mask) -> Bytes {
    let base = 2 * u(n * e) + 4 * u(4 * c);
    let floor = base + mask.reads(n, e, c, 2);
    let partials = 2 * 2 * u(g * c * 4);
    let old_mask = if mask == Mask::Off { 0 } else { u(n * e) };
    Bytes {
        floor,
        moved: floor + partials,
        // partials as now, through a second (finish) kernel
        old: base + old_mask + partials,
    }
}

/// Backward apply: reads dy (+ x with batch statistics or a mask from x) (+ y for a mask from
/// y), writes dx (+ dres); gamma, mean, invstd, dgamma, dbeta and spare (+ beta for a mask from
/// x). The kernels before issue 15 read x whether or not they used it, and y for every mask.
pub fn bn_backward(n: usize, c: usize, e: usize, mask: Mask, batch: bool, dres: bool) -> Bytes {
    let x = batch || mask == Mask::FromInput;
    let tensors = 2 + u64::from(x) + u64::from(dres);
    let vectors = 6 * u(4 * c);
    let floor = u(n * e) * tensors + vectors + mask.reads(n, e, c, 1);
    let old_tensors = 3 + u64::from(mask != Mask::Off) + u64::from(dres);
    Bytes {
        floor,
        moved: floor,
        old: u(n * e) * old_tensors + vectors,
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

/// An average pool between n_in inputs and n_out outputs whose windows hold `cells` in-image
/// elements in all: the floor reads one side once and writes the other. The forward requests
/// every window's cells and writes y; the backward gathers, for each input, the dy of every
/// window holding it (`cells` again) and writes dx. Overlapping windows (stride 1) and the
/// backward's gather re-request elements that mostly hit in cache: like
/// [`max_pool_backward`]'s `old`, a load-traffic count, not DRAM's. The scalar kernels before
/// issue 15 requested the same bytes, 2 or 4 at a time (old = moved).
pub fn avg_pool2d(n_in: usize, n_out: usize, cells: usize, e: usize, backward: bool) -> Bytes {
    let floor = u((n_in + n_out) * e);
    let moved = u((cells + if backward { n_in } else { n_out }) * e);
    Bytes {
        floor,
        moved,
        old: moved,
    }
}

/// The backward of an average pool whose windows tile the image (k = s): one thread per
/// window reads its dy once and writes its cells (and any cells past the last window) once:
/// the floor. The gather kernel it replaces requested each dy once per cell of its window.
pub fn avg_pool2d_tiles_backward(n_in: usize, n_out: usize, e: usize) -> Bytes {
    let floor = u((n_in + n_out) * e);
    Bytes {
        floor,
        moved: floor,
        old: u(2 * n_in * e),
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
            bn_backward(64_000, 64, 2, Mask::FromOutput, true, true).floor,
            5 * 128_000 + 6 * 256
        );
        let s = bn_stats(64_000, 64, 2, 16, false);
        assert!(s.moved >= s.floor && s.old > s.moved);
    }

    #[test]
    fn relu_masks_from_x_read_no_output() {
        let (n, c) = (64_000, 64);
        // Sums: x and dy, plus y only when a residual forces the mask from the output; from x
        // the mask costs gamma and beta (2 x 256 B) instead of y (128,000 B).
        let off = bn_grad_sums(n, c, 2, 1, Mask::Off);
        let from_y = bn_grad_sums(n, c, 2, 1, Mask::FromOutput);
        let from_x = bn_grad_sums(n, c, 2, 1, Mask::FromInput);
        assert_eq!(from_y.floor - off.floor, 128_000);
        assert_eq!(from_x.floor - off.floor, 2 * 256);
        assert_eq!(from_x.old, from_y.moved, "the old kernel read y");
        assert_eq!(from_x.old - from_x.moved, 128_000 - 2 * 256);
        // Apply: dy, x, dx (+ y) and the vectors (+ beta from x).
        let y = bn_backward(n, c, 2, Mask::FromOutput, true, false);
        let x = bn_backward(n, c, 2, Mask::FromInput, true, false);
        assert_eq!(y.moved, 4 * 128_000 + 6 * 256);
        assert_eq!(x.moved, 3 * 128_000 + 7 * 256);
        assert_eq!(x.old, y.moved);
        // Eval mode: x replaces y as the mask's source, the same bytes but beta.
        let ye = bn_backward(n, c, 2, Mask::FromOutput, false, false);
        let xe = bn_backward(n, c, 2, Mask::FromInput, false, false);
        assert_eq!(xe.moved, ye.moved + 256);
        assert_eq!(ye.old, ye.moved + 128_000, "the old kernel read x unused");
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

    #[test]
    fn avg_pool_counts_every_window_cell() {
        // 8 x 8 -> 4 x 4, 2x2 windows at stride 2, 16 bf16 channels: each input once.
        let (n_in, n_out) = (8 * 8 * 16, 4 * 4 * 16);
        let f = avg_pool2d(n_in, n_out, n_in, 2, false);
        assert_eq!((f.floor, f.moved), (2 * (n_in + n_out) as u64, f.floor));
        // The backward gathers one dy per input, and writes dx.
        assert_eq!(
            avg_pool2d(n_in, n_out, n_in, 2, true).moved,
            2 * 2 * n_in as u64
        );
    }
}
