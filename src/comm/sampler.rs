//! The distributed sampler: which images of each global batch a rank reads.
//!
//! Every rank draws the epoch's global order exactly as one process does (same seed, same
//! epoch), cuts it into the same global batches, and keeps its share of each: images
//! [start, start + n) of the batch, dealt out as evenly as possible ([`share`]), the same
//! share the in-process thread ranks take of a whole batch. So the union of the ranks' shares
//! is the single-process batch, in order, and no rank loads images it does not train on.
//! Augmentations are drawn per (seed, epoch, image, view), so a rank's views of an image are
//! the ones one process would draw.

use crate::{Error, Result};

/// Rank `rank`'s images of a batch of `b` split over `world` ranks: (first, count).
pub fn share(b: usize, rank: usize, world: usize) -> Result<(usize, usize)> {
    if world == 0 || rank >= world || b < world {
        return Err(Error::Config(format!(
            "data parallelism: a batch of {b} images cannot be shared by {world} ranks \
             (rank {rank}); every rank needs at least one image"
        )));
    }
    let (base, extra) = (b / world, b % world);
    Ok((
        rank * base + rank.min(extra),
        base + usize::from(rank < extra),
    ))
}

/// The rank's images of an epoch whose global visiting order is `order`, batch after batch
/// (full batches of `batch` only: training drops the last partial one).
pub fn rank_order(order: &[usize], batch: usize, rank: usize, world: usize) -> Result<Vec<usize>> {
    let (start, n) = share(batch, rank, world)?;
    Ok(order
        .chunks_exact(batch)
        .flat_map(|b| b[start..start + n].iter().copied())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_each_batch_once_in_order() {
        for (b, w) in [(8, 2), (9, 3), (10, 3), (5, 5), (7, 1)] {
            let mut next = 0;
            for r in 0..w {
                let (start, n) = share(b, r, w).unwrap();
                assert_eq!(start, next, "b {b} w {w} r {r}");
                assert!(n == b / w || n == b / w + 1);
                next += n;
            }
            assert_eq!(next, b);
        }
        assert!(share(2, 0, 3).is_err());
        assert!(share(6, 3, 3).is_err());
    }

    #[test]
    fn rank_orders_rebuild_the_global_batches() {
        let order: Vec<usize> = (0..23).map(|i| (i * 7) % 23).collect();
        let (batch, world) = (7, 3);
        let parts: Vec<Vec<usize>> = (0..world)
            .map(|r| rank_order(&order, batch, r, world).unwrap())
            .collect();
        let per: Vec<usize> = (0..world)
            .map(|r| share(batch, r, world).unwrap().1)
            .collect();
        // Batch k of one process is the ranks' k-th shares, in rank order.
        for (k, global) in order.chunks_exact(batch).enumerate() {
            let joined: Vec<usize> = (0..world)
                .flat_map(|r| parts[r][k * per[r]..(k + 1) * per[r]].to_vec())
                .collect();
            assert_eq!(joined, global);
        }
        // The partial batch (23 = 3·7 + 2) is dropped on every rank.
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 21);
    }
}
