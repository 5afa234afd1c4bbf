//! Launch geometry of the channel-group kernels (kernels/vec.cuh): over x viewed as [M, C], a
//! thread owns W consecutive channels (W = 8 when C % 8 == 0, else 1) for its whole life and
//! walks the rows with a stride of `lanes`, so the grid is sized by the device, not by the
//! tensor: a tensor of any size (more than 65,535 blocks' worth of 256 elements included) is
//! covered by the row loop. And the geometry of the per-channel reductions (kernels/vec.cuh
//! `column_sums_w`): the same W-channel groups, 32 groups per block at most, row chunks down.

use super::module::{Launch, THREADS};

/// Threads a channel-group launch aims at: enough 16-byte accesses in flight to cover HBM's
/// latency on the largest GPU we target (132 SMs x 2,048 resident threads ~ 2^18).
pub const TARGET_THREADS: usize = 1 << 18;

/// Channels per thread for `c` channels.
pub fn width(c: usize) -> usize {
    if c % 8 == 0 {
        8
    } else {
        1
    }
}

/// (launch, lanes) for [m, c] aiming at `target` threads: groups·lanes threads, each walking
/// rows r, r + lanes, ... below m.
pub fn group_launch_for(m: usize, c: usize, target: usize) -> (Launch, usize) {
    group_launch_w(m, c, width(c), target)
}

/// [`group_launch_for`] with the width `w` (8 or 1) chosen by the caller (kernels whose width
/// depends on more than the channel count).
pub fn group_launch_w(m: usize, c: usize, w: usize, target: usize) -> (Launch, usize) {
    let groups = (c / w).max(1);
    let lanes = target.div_ceil(groups).clamp(1, m.max(1));
    let threads = groups * lanes;
    let launch = Launch {
        grid: (threads.div_ceil(THREADS as usize), 1, 1),
        block: (THREADS, 1, 1),
    };
    (launch, lanes)
}

/// [`group_launch_for`] at [`TARGET_THREADS`].
pub fn group_launch(m: usize, c: usize) -> (Launch, usize) {
    group_launch_for(m, c, TARGET_THREADS)
}

/// Threads of a reduction block and the most groups one holds (kernels/vec.cuh RED_THREADS,
/// RED_GROUPS).
const RED_THREADS: usize = 256;
const RED_GROUPS: usize = 32;

/// (groups per block, row lanes per block) of a reduction over `c` channels.
fn red_block(c: usize) -> (usize, usize) {
    let gb = (c / width(c)).clamp(1, RED_GROUPS);
    (gb, RED_THREADS / gb)
}

/// Columns of blocks of a reduction over `c` channels: one ticket each.
pub fn col_blocks(c: usize) -> usize {
    (c / width(c)).max(1).div_ceil(RED_GROUPS)
}

/// Launch of a per-channel reduction over `c` channels in `g` row chunks.
pub fn reduce_launch(c: usize, g: usize) -> Launch {
    Launch {
        grid: (col_blocks(c), g.max(1), 1),
        block: (RED_THREADS as u32, 1, 1),
    }
}

/// Row chunking of the per-channel reductions: (G, rows per chunk), at least 8 rows per row
/// lane and at most about a thousand blocks whatever the channel count (the finishing block
/// adds G partials per channel).
pub fn chunks(m: usize, c: usize) -> (usize, usize) {
    let lanes = red_block(c).1;
    let g = m
        .div_ceil(8 * lanes)
        .clamp(1, (1024 / col_blocks(c)).max(1));
    let rows = m.div_ceil(g).max(1);
    (m.div_ceil(rows).max(1), rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_and_channel_has_exactly_one_thread() {
        for (m, c) in [
            (1, 1),
            (7, 12),
            (1000, 64),
            (3, 2048),
            (100_000, 40),
            (50, 6144),
        ] {
            let (l, lanes) = group_launch_for(m, c, 4096);
            let w = width(c);
            let threads = l.grid.0 * l.block.0 as usize;
            assert!(threads >= (c / w) * lanes, "{m}x{c}");
            let mut seen = vec![0u8; m * c / w];
            for t in 0..(c / w) * lanes {
                let (g, r0) = (t % (c / w), t / (c / w));
                for r in (r0..m).step_by(lanes) {
                    seen[r * (c / w) + g] += 1;
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "{m}x{c}");
        }
    }

    #[test]
    fn the_grid_stays_small_when_the_work_is_over_65535_blocks() {
        // 2^26 bf16 elements would be 262,144 blocks of 256 one per element; the row loop
        // covers them with a grid sized by TARGET_THREADS.
        let (l, lanes) = group_launch(1 << 20, 64);
        assert!(l.grid.0 <= TARGET_THREADS / THREADS as usize + 1);
        assert!(lanes < 1 << 20, "rows are looped over");
        assert!(l.checked().is_ok());
    }

    #[test]
    fn chunks_cover_the_rows() {
        for (m, c) in [(1, 3), (64, 96), (100_000, 40), (5, 4096)] {
            let (g, rows) = chunks(m, c);
            assert!(g * rows >= m && (g - 1) * rows < m, "{m}x{c}");
            assert!(g <= 65_535);
            assert!(reduce_launch(c, g).checked().is_ok(), "{m}x{c}");
        }
    }

    #[test]
    fn reduction_blocks_hold_every_group_once() {
        for c in [1, 3, 12, 40, 64, 96, 520, 2048, 6144] {
            let (gb, lanes) = red_block(c);
            let w = width(c);
            assert!(
                gb * lanes <= RED_THREADS && gb * w * 2 <= 2 * RED_THREADS,
                "{c}"
            );
            assert!(
                col_blocks(c) * gb >= c / w && (col_blocks(c) - 1) * gb < c / w,
                "{c}"
            );
        }
    }
}
