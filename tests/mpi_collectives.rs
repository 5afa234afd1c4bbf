//! The MPI communicator's collectives on 3 processes: this test binary runs itself under
//! `mpirun -np 3`, and each copy runs the ignored `rank_body` as one rank, checking every
//! collective against sums and layouts known exactly (small integers, exact in f32 and f64).
//! Needs the feature `mpi` and mpirun (see tests/support/mpi.rs for when it must not skip).

#![cfg(feature = "mpi")]

#[path = "support/mpi.rs"]
mod mpi_support;

use simclr::comm::Communicator;
use simclr::{DType, Tensor};
use std::time::Duration;

const WORLD: usize = 3;

#[test]
fn collectives_on_three_processes() {
    if !mpi_support::have_mpirun() {
        return;
    }
    let text = mpi_support::run_ranks(WORLD, "rank_body", &[]);
    for r in 0..WORLD {
        assert!(
            text.contains(&format!("rank {r} of {WORLD}: collectives ok")),
            "{text}"
        );
    }
}

/// One rank of `collectives_on_three_processes` (run only by it, under mpirun).
#[test]
#[ignore]
fn rank_body() {
    assert!(
        std::env::var("OMPI_COMM_WORLD_SIZE").is_ok(),
        "run by collectives_on_three_processes under mpirun"
    );
    let m = simclr::comm::mpi::world(Duration::from_secs(60)).unwrap();
    let (r, w) = (m.rank(), m.world_size());
    assert_eq!(w, WORLD);
    let sum_of_ranks = (w * (w - 1) / 2) as f64;

    // All-reduce: several tensors in one call, f32 and f64 (each travels in its own type).
    let a = Tensor::from_f64(&[r as f64, 1.0, 2.0 * r as f64], &[3], DType::F32).unwrap();
    let b = Tensor::from_f64(&[10.0 * r as f64; 4], &[2, 2], DType::F32).unwrap();
    let s = m.all_reduce_sum(&[a, b]).unwrap();
    assert_eq!(s[0].shape(), &[3]);
    assert_eq!(
        s[0].to_vec_f64().unwrap(),
        [sum_of_ranks, w as f64, 2.0 * sum_of_ranks]
    );
    assert_eq!((s[1].shape(), s[1].dtype()), (&[2usize, 2][..], DType::F32));
    assert_eq!(s[1].to_vec_f64().unwrap(), [10.0 * sum_of_ranks; 4]);
    // Steps of 2^-30 are lost in f32 (2^-23 apart near 1): an f32 round trip would fail.
    let step = (2.0f64).powi(-30);
    let fine = 1.0 + step * (r + 1) as f64;
    let d = Tensor::from_f64(&[fine], &[1], DType::F64).unwrap();
    let ds = m.all_reduce_sum(&[d]).unwrap();
    assert_eq!(ds[0].dtype(), DType::F64);
    let want = (0..w).map(|q| 1.0 + step * (q + 1) as f64).sum::<f64>();
    assert!((ds[0].to_vec_f64().unwrap()[0] - want).abs() <= 4.0 * f64::EPSILON * want);

    // All-gather of uneven rows: rank q sends q + 1 rows of [q, column].
    let rows: Vec<f64> = (0..r + 1).flat_map(|_| [r as f64, 0.0, 1.0]).collect();
    let g = m
        .all_gather(&Tensor::from_f64(&rows, &[r + 1, 3], DType::F32).unwrap())
        .unwrap();
    assert_eq!(g.shape(), &[w * (w + 1) / 2, 3]);
    let want: Vec<f64> = (0..w)
        .flat_map(|q| (0..q + 1).flat_map(move |_| [q as f64, 0.0, 1.0]))
        .collect();
    assert_eq!(g.to_vec_f64().unwrap(), want);

    // Broadcast: rank 0's values everywhere; the others' tensors are templates.
    let mine = Tensor::from_f64(&[r as f64 + 7.0; 5], &[5], DType::F32).unwrap();
    assert_eq!(m.broadcast(&mine).unwrap().to_vec_f64().unwrap(), [7.0; 5]);
    let mut id = [r as u8; 128];
    m.broadcast_bytes(&mut id).unwrap();
    assert_eq!(id, [0u8; 128]);
    m.barrier().unwrap();

    println!("rank {r} of {w}: collectives ok");
    simclr::comm::mpi::finalize().unwrap();
}
