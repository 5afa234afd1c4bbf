//! Issue 14, item 10: the CPU is bit-exact run to run on every path. A parallel sum whose
//! reduction tree follows rayon's work stealing (LARS's norms go through it) gave different
//! bits depending on thread count and scheduling, so data-parallel and queue runs, where
//! several threads contend for the pool, ended with different weights about 1 run in 4.

use simclr::ops::elementwise::sum_all;
use simclr::{DType, Rng, Tensor};

fn sum_in_pool(x: &Tensor, threads: usize) -> u32 {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| sum_all(x).unwrap().to_vec_f32().unwrap()[0].to_bits())
}

#[test]
fn a_parallel_sum_does_not_depend_on_threads_or_scheduling() {
    let mut rng = Rng::new(3);
    let x = Tensor::randn(&[1 << 20], 1.0, DType::F32, &mut rng).unwrap();
    let reference = sum_in_pool(&x, 1);
    for threads in [2, 3, 5, 8] {
        for _ in 0..4 {
            assert_eq!(sum_in_pool(&x, threads), reference, "{threads} threads");
        }
    }
    // Contended: several callers share the global pool at once, as data-parallel ranks do.
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| sum_all(&x).unwrap().to_vec_f32().unwrap()[0].to_bits()))
            .collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), reference);
        }
    });
}
