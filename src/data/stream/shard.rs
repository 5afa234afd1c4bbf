//! Sharding an epoch over data-parallel ranks: every rank draws the same global order (the
//! loader's seed and epoch fix it), and rank `r` of `world` takes the `r`-th slice of each
//! global batch. Concatenating the ranks' batches k gives the single-process batch k, so a run
//! on N processes sees the same images per step as one process with the global batch size,
//! and each rank decodes only its share.

use crate::{Error, Result};

/// Rank `rank`'s share of `order`, batch by batch: from each run of `global_batch` indices,
/// the `global_batch / world` starting at `rank * global_batch / world`. A last partial
/// global batch is dropped (as `drop_last` training does), so every rank takes as many steps.
pub fn shard_order(
    order: &[usize],
    global_batch: usize,
    rank: usize,
    world: usize,
) -> Result<Vec<usize>> {
    if world == 0 || rank >= world {
        return Err(Error::Config(format!(
            "shard: rank {rank} is not in 0..{world} (the world size)"
        )));
    }
    if global_batch == 0 || global_batch % world != 0 {
        return Err(Error::Config(format!(
            "shard: the global batch {global_batch} must be a positive multiple of the world \
             size {world}"
        )));
    }
    let per = global_batch / world;
    Ok(order
        .chunks_exact(global_batch)
        .flat_map(|b| b[rank * per..(rank + 1) * per].iter().copied())
        .collect())
}
