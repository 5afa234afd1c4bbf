//! Launch geometry of the per-image channel-group kernels (kernels/image_groups.cuh: SK
//! attention, global average pool): a thread owns W channels of one image and walks its
//! pixels; the grid is images x pixel chunks x channel blocks.

use super::dims::dim;
use super::groups::{width, TARGET_THREADS};
use super::module::{Launch, MAX_GRID_X};
use crate::{Error, Result};

/// Threads per block (IMAGE_THREADS in kernels/image_groups.cuh).
const THREADS: usize = 256;

/// The launch for n images of hw pixels and c channels per path,
/// with the pixels split into `chunks` (a chunk count of 0 picks enough chunks to reach
/// TARGET_THREADS): (launch, chunks).
pub fn geometry(
    op: &'static str,
    n: usize,
    hw: usize,
    c: usize,
    chunks: usize,
) -> Result<(Launch, i32)> {
    let groups = (c / width(c)).max(1);
    let gb = groups.min(THREADS);
    let (lanes, gx) = (THREADS / gb, groups.div_ceil(gb));
    let per_image = gx * THREADS;
    let chunks = if chunks > 0 {
        chunks
    } else {
        TARGET_THREADS
            .div_ceil((n * per_image).max(1))
            .clamp(1, hw.div_ceil(lanes).max(1))
    };
    let blocks = n * chunks * gx;
    if blocks > MAX_GRID_X {
        return Err(Error::shape(
            op,
            format!("{n} images x {chunks} pixel chunks x {gx} channel blocks exceed the grid"),
        ));
    }
    let launch = Launch {
        grid: (blocks.max(1), 1, 1),
        block: (THREADS as u32, 1, 1),
    };
    Ok((launch, dim::<i32>(chunks, op)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_take_one_chunk_and_broadcasts_reach_the_target() {
        let (l, chunks) = geometry("t", 4, 3136, 64, 1).unwrap();
        // 8 groups of 8 channels per block: one block per image.
        assert_eq!((l.grid.0, chunks), (4, 1));
        let (l, chunks) = geometry("t", 4, 3136, 64, 0).unwrap();
        assert!(chunks > 1 && l.grid.0 == 4 * chunks as usize);
        assert!(l.grid.0 * 256 >= TARGET_THREADS || chunks as usize == 3136usize.div_ceil(32));
        // 300 groups: two channel blocks per image and chunk.
        let (l, _) = geometry("t", 2, 6, 2400, 1).unwrap();
        assert_eq!(l.grid.0, 4);
    }
}
