//! NCCL with several ranks, one thread per GPU, as the trainer's `--world-size` runs them: the
//! all-reduced sums equal the ranks' tensors added up on the host, all-gather concatenates
//! ranks of unequal row counts in rank order, and broadcast copies rank 0's tensor everywhere,
//! in f32 and bf16. Needs at least two devices (the emulated device has four); on a machine with
//! a single GPU it says so and checks nothing.
#![cfg(feature = "cuda")]

#[path = "cuda_common.rs"]
mod common;
use common::{gpu, randn, DTYPES};

use simclr::comm::{Communicator, Nccl};
use simclr::testing::{assert_close, fresh_seed, tolerance};
use simclr::{DType, Device, Rng, Tensor};

/// Each rank's inputs: three tensors to sum, `rank + 1` rows to gather, one to broadcast.
fn inputs(rank: usize, dt: DType, seed: u64) -> (Vec<Tensor>, Tensor, Tensor) {
    let mut rng = Rng::new(seed ^ (rank as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let sums = [vec![3, 5, 7], vec![1000], vec![2, 17]]
        .iter()
        .map(|s| randn(s, dt, &mut rng))
        .collect();
    (
        sums,
        randn(&[rank + 1, 6], dt, &mut rng),
        randn(&[4, 9], dt, &mut rng),
    )
}

#[test]
fn nccl_ranks_sum_gather_and_broadcast_like_the_host() {
    let Some(_) = gpu() else { return };
    let world = simclr::cuda::device_count().min(3);
    if world < 2 {
        println!("only {world} CUDA device: several NCCL ranks need several devices");
        return;
    }
    let seed = fresh_seed("nccl ranks");
    let ordinals: Vec<usize> = (0..world).collect();
    let comms = Nccl::group(&ordinals).expect("ncclCommInitAll");
    for dt in DTYPES {
        let results: Vec<(Vec<Tensor>, Tensor, Tensor)> = std::thread::scope(|s| {
            let handles: Vec<_> = comms
                .iter()
                .map(|comm| {
                    s.spawn(move || {
                        let r = comm.rank();
                        let dev = Device::Cuda(r);
                        let (sums, rows, bc) = inputs(r, dt, seed);
                        let up = |t: &Tensor| t.to_device(dev).unwrap();
                        let sums: Vec<Tensor> = sums.iter().map(up).collect();
                        let reduced = comm.all_reduce_sum(&sums).unwrap();
                        let gathered = comm.all_gather(&up(&rows)).unwrap();
                        let broadcast = comm.broadcast(&up(&bc)).unwrap();
                        comm.barrier().unwrap();
                        let down = |t: &Tensor| t.to_device(Device::Cpu).unwrap();
                        (
                            reduced.iter().map(down).collect(),
                            down(&gathered),
                            down(&broadcast),
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let all: Vec<_> = (0..world).map(|r| inputs(r, dt, seed)).collect();
        for (rank, (reduced, gathered, broadcast)) in results.iter().enumerate() {
            for (i, got) in reduced.iter().enumerate() {
                let mut want = all[0].0[i].to_vec_f64().unwrap();
                for other in &all[1..] {
                    for (w, v) in want.iter_mut().zip(other.0[i].to_vec_f64().unwrap()) {
                        *w += v;
                    }
                }
                let want = Tensor::from_f64(&want, got.shape(), DType::F32).unwrap();
                let what = format!("all-reduce #{i} on rank {rank} ({})", dt.name());
                assert_close(&what, got, &want, tolerance(dt, world, 1));
            }
            let rows: Vec<f64> = all.iter().flat_map(|a| a.1.to_vec_f64().unwrap()).collect();
            assert_eq!(gathered.shape(), &[world * (world + 1) / 2, 6]);
            assert_eq!(
                gathered.to_vec_f64().unwrap(),
                rows,
                "all-gather on rank {rank}"
            );
            assert_eq!(
                broadcast.to_vec_f64().unwrap(),
                all[0].2.to_vec_f64().unwrap(),
                "broadcast on rank {rank}"
            );
        }
    }
}
