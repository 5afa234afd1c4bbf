//! Sharding over ranks: the ranks' batches, concatenated in rank order, are the one-process
//! global batches, no index is read by two ranks, and bad rank/world values are refused.

use crate::data::stream::shard::shard_order;
use crate::data::{AugmentConfig, Dataset, EvalTransform, Loader, LoaderConfig};
use crate::testing::fresh_seed;
use crate::Rng;
use std::sync::Arc;

#[test]
fn shards_concatenate_to_the_single_process_batches() {
    let mut rng = Rng::new(fresh_seed(
        "shards_concatenate_to_the_single_process_batches",
    ));
    let world = 1 + rng.below(4);
    let per = 1 + rng.below(5);
    let n = 50 + rng.below(100);
    let (train, _) = crate::data::synthetic::synthetic_splits(n, 1, 8, rng.next_u64()).unwrap();
    let ds: Arc<dyn Dataset> = Arc::new(train);
    let t = Arc::new(EvalTransform::new(AugmentConfig::cifar(8)).unwrap());
    let cfg = |batch, shard| LoaderConfig {
        batch_size: batch,
        seed: 5,
        workers: 1,
        drop_last: true,
        shard,
        ..Default::default()
    };
    let one = Loader::new(ds.clone(), t.clone(), cfg(per * world, None)).unwrap();
    let ranks: Vec<Loader> = (0..world)
        .map(|r| Loader::new(ds.clone(), t.clone(), cfg(per, Some((r, world)))).unwrap())
        .collect();
    for epoch in 0..2 {
        let global: Vec<Vec<usize>> = one.epoch(epoch).map(|b| b.unwrap().indices).collect();
        let mine: Vec<Vec<Vec<usize>>> = ranks
            .iter()
            .map(|l| l.epoch(epoch).map(|b| b.unwrap().indices).collect())
            .collect();
        assert_eq!(global.len(), n / (per * world));
        for (k, g) in global.iter().enumerate() {
            let joined: Vec<usize> = mine.iter().flat_map(|m| m[k].clone()).collect();
            assert_eq!(&joined, g, "epoch {epoch} batch {k}");
        }
        let mut all: Vec<usize> = mine.iter().flatten().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), global.len() * per * world, "an index read twice");
    }
    assert!(shard_order(&[1, 2, 3], 3, 3, 3).is_err());
    assert!(shard_order(&[1, 2, 3], 4, 0, 3).is_err());
    assert!(Loader::new(ds, t, cfg(2, Some((2, 2)))).is_err());
}
