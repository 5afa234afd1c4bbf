//! NCCL on one GPU: a world of one, as the trainer runs on a single H100. Collectives (real
//! NCCL calls on the device's stream) must be identities, bit for bit, in f32 and bf16. NCCL cannot put two ranks on one GPU, so more ranks are
//! tested with the thread communicator (tests/data_parallel.rs). Without a GPU the test prints
//! `skipped: <reason>`; with a GPU but no loadable libnccl it fails, naming the library path.
#![cfg(feature = "cuda")]

#[path = "cuda_common.rs"]
mod common;
use common::{gpu, randn, DTYPES};

use simclr::comm::{Communicator, Nccl};
use simclr::testing::fresh_seed;
use simclr::Rng;

#[test]
fn nccl_world_of_one_is_the_identity() {
    let Some(dev) = gpu() else { return };
    let mut comms = Nccl::group(&[0]).unwrap_or_else(|e| {
        panic!(
            "a GPU but no NCCL ({e}); LD_LIBRARY_PATH={:?}",
            std::env::var("LD_LIBRARY_PATH").unwrap_or_default()
        )
    });
    let comm = comms.pop().unwrap();
    assert_eq!((comm.rank(), comm.world_size()), (0, 1));
    let mut rng = Rng::new(fresh_seed("nccl world of one"));
    for dt in DTYPES {
        let ts: Vec<_> = [vec![3, 5, 7], vec![1000], vec![2, 17]]
            .iter()
            .map(|s| randn(s, dt, &mut rng).to_device(dev).unwrap())
            .collect();
        let sums = comm.all_reduce_sum(&ts).unwrap();
        for (a, b) in ts.iter().zip(&sums) {
            assert_eq!(b.dtype(), dt);
            assert_eq!(a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
        }
        let g = comm.all_gather(&ts[0]).unwrap();
        assert_eq!(g.shape(), ts[0].shape());
        assert_eq!(g.to_vec_f64().unwrap(), ts[0].to_vec_f64().unwrap());
        let b = comm.broadcast(&ts[1]).unwrap();
        assert_eq!(b.to_vec_f64().unwrap(), ts[1].to_vec_f64().unwrap());
        comm.barrier().unwrap();
    }
}
