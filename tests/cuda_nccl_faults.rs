//! NCCL faults, 3 ranks on threads as separate processes would run them (`Nccl::new`, the
//! non-blocking init): a rank that hangs (never calls the collective), a rank that dies (aborts
//! its communicator) and a rank that never joins end the others' calls with an error naming
//! the waiting rank, the world, the collective and `--dist-timeout-s`, within the timeout (plus
//! a generous margin for a loaded machine), never a hang. On the emulated device the ranks'
//! devices are 0..3; on a machine with fewer GPUs the tests say so and check nothing. Only the
//! emulated NCCL names the missing or aborted rank and tells peers of an abort at once; on
//! GPUs those parts are not asked for, and an aborted peer ends the others at the deadline.
#![cfg(feature = "cuda")]

#[path = "cuda_common.rs"]
mod common;
use common::gpu;

use simclr::comm::{nccl_fault_message, Communicator, Nccl, NcclId};
use simclr::{DType, Device, Tensor};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WORLD: usize = 3;

/// What the machine may add to a timeout before a test calls it a hang.
const MARGIN: Duration = Duration::from_secs(10);

/// Whether this machine has a device per rank (printing why not).
fn devices() -> bool {
    if gpu().is_none() {
        return false;
    }
    let n = simclr::cuda::device_count();
    if n < WORLD {
        println!("only {n} CUDA devices: these tests run {WORLD} ranks on one device each");
        return false;
    }
    true
}

/// Runs `f(rank, id)` for every rank on its own thread; the results in rank order.
fn ranks<R: Send>(f: impl Fn(usize, NcclId) -> R + Sync) -> Vec<R> {
    let id = NcclId::new().expect("ncclGetUniqueId");
    std::thread::scope(|s| {
        let f = &f;
        let hs: Vec<_> = (0..WORLD).map(|r| s.spawn(move || f(r, id))).collect();
        hs.into_iter()
            .map(|h| h.join().expect("rank panicked"))
            .collect()
    })
}

fn three_tensors(rank: usize) -> Vec<Tensor> {
    [vec![4, 3], vec![7], vec![2, 5]]
        .iter()
        .map(|s| {
            let n: usize = s.iter().product();
            let v: Vec<f64> = (0..n).map(|i| (rank * 100 + i) as f64).collect();
            Tensor::from_f64(&v, s, DType::F32)
                .unwrap()
                .to_device(Device::Cuda(rank))
                .unwrap()
        })
        .collect()
}

/// Whether the ranks run on the emulated device, whose NCCL names the ranks a fault involves
/// (real NCCL does not tell a rank which peer is missing or aborted).
fn emulated() -> bool {
    simclr::cuda::driver::is_emulated()
}

fn expect_err<T>(r: simclr::Result<T>, what: &str) -> String {
    match r {
        Ok(_) => panic!("{what}: succeeded, expected a fault"),
        Err(e) => e.to_string(),
    }
}

fn has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "missing {p:?} in: {msg}");
    }
}

#[test]
fn the_fault_message_names_rank_world_collective_and_timeout() {
    let t = Duration::from_millis(2500);
    assert_eq!(
        nccl_fault_message(1, 3, "all_reduce_sum of 21 tensors", t, None, ""),
        "NCCL rank 1 of 3: all_reduce_sum of 21 tensors did not complete within 2.5 s \
         (--dist-timeout-s): a rank died or hangs, or the ranks called different collectives; \
         the communicator was aborted (timeout 2.5 s)"
    );
    assert_eq!(
        nccl_fault_message(
            0,
            8,
            "broadcast of [3]",
            t,
            Some("remote process exited"),
            "x"
        ),
        "NCCL rank 0 of 8: broadcast of [3] failed: remote process exited; the communicator \
         was aborted (x) (timeout 2.5 s)"
    );
}

#[test]
fn non_blocking_communicators_sum_gather_and_broadcast() {
    if !devices() {
        return;
    }
    let out = ranks(|r, id| {
        let comm = Nccl::new(r, r, WORLD, id, Duration::from_secs(120)).unwrap();
        let sums = comm.all_reduce_sum(&three_tensors(r)).unwrap();
        let rows = Tensor::full(&[r + 1, 2], r as f64, DType::F32, Device::Cuda(r)).unwrap();
        let gathered = comm.all_gather(&rows).unwrap();
        let b = comm.broadcast(&three_tensors(r)[1]).unwrap();
        comm.barrier().unwrap();
        let host = |t: &Tensor| t.to_vec_f64().unwrap();
        (
            sums.iter().map(host).collect::<Vec<_>>(),
            host(&gathered),
            host(&b),
        )
    });
    let want: Vec<Vec<f64>> = (0..3)
        .map(|i| {
            let each: Vec<Vec<f64>> = (0..WORLD)
                .map(|r| three_tensors(r)[i].to_vec_f64().unwrap())
                .collect();
            (0..each[0].len())
                .map(|k| each.iter().map(|e| e[k]).sum())
                .collect()
        })
        .collect();
    let gathered: Vec<f64> = (0..WORLD)
        .flat_map(|r| vec![r as f64; 2 * (r + 1)])
        .collect();
    for (r, (sums, g, b)) in out.iter().enumerate() {
        // Small integers: the f32 sums are exact.
        assert_eq!(sums, &want, "sums on rank {r}");
        assert_eq!(g, &gathered, "all_gather on rank {r}");
        assert_eq!(
            b,
            &three_tensors(0)[1].to_vec_f64().unwrap(),
            "broadcast on rank {r}"
        );
    }
}

#[test]
fn a_hung_rank_ends_the_others_collective_at_the_deadline() {
    if !devices() {
        return;
    }
    let timeout = Duration::from_secs(2);
    let (done, wait_done) = mpsc::channel::<()>();
    let wait_done = std::sync::Mutex::new(wait_done);
    let out = ranks(|r, id| {
        let comm = Nccl::new(r, r, WORLD, id, timeout).unwrap();
        if r == 2 {
            // Hangs: holds its communicator and never calls, until both peers gave up.
            let rx = wait_done.lock().unwrap();
            for _ in 0..2 {
                rx.recv_timeout(timeout * 10).expect("peers never gave up");
            }
            return None;
        }
        let t0 = Instant::now();
        let first = comm.all_reduce_sum(&three_tensors(r));
        let took = t0.elapsed();
        done.send(()).unwrap();
        // Every later call gives the same error, at once.
        let t1 = Instant::now();
        let again = comm.broadcast(&three_tensors(r)[0]);
        Some((
            expect_err(first, "all_reduce_sum"),
            took,
            expect_err(again, "broadcast"),
            t1.elapsed(),
        ))
    });
    for (r, o) in out.into_iter().enumerate().take(2) {
        let (msg, took, again, took_again) = o.unwrap();
        has(
            &msg,
            &[
                &format!("NCCL rank {r} of 3"),
                "all_reduce_sum of 3 tensors",
                "did not complete within 2.0 s",
                "--dist-timeout-s",
                "aborted",
            ],
        );
        if emulated() {
            // The emulation names the rank that never called.
            has(&msg, &["ranks [2] have not called"]);
        }
        assert!(
            took >= timeout,
            "rank {r} gave up after {took:?}, before {timeout:?}"
        );
        assert!(took < timeout + MARGIN, "rank {r} took {took:?}");
        assert_eq!(again, msg, "rank {r}'s later call");
        assert!(
            took_again < MARGIN,
            "rank {r}'s later call took {took_again:?}"
        );
    }
}

#[test]
fn a_rank_that_aborts_fails_its_peers_without_waiting_for_the_deadline() {
    if !devices() {
        return;
    }
    // The emulated NCCL tells the peers of an aborted communicator at once; real NCCL does
    // not, so on a GPU the peers end at a short deadline instead.
    let timeout = Duration::from_secs(if emulated() { 60 } else { 3 });
    let out = ranks(|r, id| {
        let comm = Nccl::new(r, r, WORLD, id, timeout).unwrap();
        if r == 2 {
            // Dies: its communicator is aborted (dropped) before the collective.
            drop(comm);
            return None;
        }
        let t0 = Instant::now();
        let res = comm.all_reduce_sum(&three_tensors(r));
        Some((expect_err(res, "all_reduce_sum"), t0.elapsed()))
    });
    for (r, o) in out.into_iter().enumerate().take(2) {
        let (msg, took) = o.unwrap();
        has(
            &msg,
            &[
                &format!("NCCL rank {r} of 3"),
                "all_reduce_sum of 3 tensors",
            ],
        );
        if emulated() {
            has(&msg, &["failed:", "rank 2 aborted its communicator"]);
            assert!(
                took < MARGIN,
                "rank {r} waited {took:?} for an aborted peer"
            );
        } else {
            assert!(took < timeout + MARGIN, "rank {r} took {took:?}");
        }
    }
}

#[test]
fn an_init_with_a_rank_missing_fails_at_the_deadline() {
    if !devices() {
        return;
    }
    let timeout = Duration::from_secs(2);
    let out = ranks(|r, id| {
        if r == 2 {
            return None; // never joins
        }
        let t0 = Instant::now();
        let res = Nccl::new(r, r, WORLD, id, timeout);
        Some((expect_err(res, "init"), t0.elapsed()))
    });
    // The first rank to give up does so at the deadline; its abort may then fail the other at
    // once (the emulation tells the group; real NCCL would let it reach its own deadline).
    let mut at_deadline = 0;
    for (r, o) in out.into_iter().enumerate().take(2) {
        let (msg, took) = o.unwrap();
        has(
            &msg,
            &[&format!("NCCL rank {r} of 3"), "joining the communicator"],
        );
        if msg.contains("did not complete within 2.0 s") {
            has(&msg, &["--dist-timeout-s"]);
            if emulated() {
                has(&msg, &["ranks [2] have not joined"]);
            }
            assert!(took >= timeout, "rank {r} gave up after {took:?}");
            at_deadline += 1;
        } else {
            has(&msg, &["aborted before every rank joined"]);
        }
        assert!(took < timeout + MARGIN, "rank {r} took {took:?}");
    }
    assert!(at_deadline >= 1, "no rank reported the deadline");
}

/// The watchdog's case, which on a GPU is the common one: NCCL took the collective, but the
/// device never finishes it (the emulated event recorded after it is held unpassed). The
/// watchdog aborts the communicator at the deadline and the next call says why.
#[cfg(feature = "cuda-emu")]
#[test]
fn the_watchdog_ends_a_collective_the_device_never_finishes() {
    use simclr::cuda::driver::{mode, Mode};
    use simclr::cuda::emu::event::hold_events;
    if gpu().is_none() {
        return;
    }
    if mode() != Mode::Emulated {
        println!("skipped: holding events needs the emulated device (SIMCLR_CUDA=emu)");
        return;
    }
    let timeout = Duration::from_secs(1);
    let comm = Nccl::group_with_timeout(&[0], timeout).unwrap().remove(0);
    let t0 = Instant::now();
    hold_events(true);
    let first = comm.all_reduce_sum(&three_tensors(0));
    hold_events(false);
    first.expect("NCCL takes the collective; only the device never finishes it");
    let msg = loop {
        match comm.broadcast(&three_tensors(0)[1]) {
            Err(e) => break e.to_string(),
            Ok(_) => {
                assert!(t0.elapsed() < timeout + MARGIN, "the watchdog never fired");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let took = t0.elapsed();
    has(
        &msg,
        &[
            "NCCL rank 0 of 1",
            "all_reduce_sum of 3 tensors (waited for on the device)",
            "did not complete within 1.0 s",
            "aborted",
        ],
    );
    assert!(took >= timeout, "the watchdog fired after {took:?}");
}

#[test]
fn a_group_with_one_gpu_twice_is_refused() {
    if gpu().is_none() {
        return;
    }
    let e = expect_err(Nccl::group(&[0, 0]), "a group on cuda:0 twice");
    has(
        &e,
        &[
            "NCCL ranks need one GPU each",
            "cuda:0 is given to ranks 0 and 1",
        ],
    );
}
