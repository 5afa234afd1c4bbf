//! Emulated NCCL across 2 and 3 ranks on threads: collectives equal plain sums and copies,
//! disagreements fail on every rank, aborted peers fail fast, init refusals.

use super::common::*;
use simclr::cuda::driver::nccl::*;
use simclr::cuda::emu::nccl;
use simclr::testing::fresh_seed;
use simclr::{DType, Rng};
use std::ptr::null_mut;
use std::sync::{RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

/// `a_missing_peer_times_out_naming_it` shortens the process-wide rendezvous timeout
/// (`SIMCLR_EMU_NCCL_TIMEOUT_S`) while it holds this for writing; every other test holds it for
/// reading, so a rank of theirs that is late on a loaded machine is not failed by that timeout.
static TIMEOUT: RwLock<()> = RwLock::new(());

fn default_timeout() -> RwLockReadGuard<'static, ()> {
    TIMEOUT.read().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f(rank, comm)` on one thread per rank, bound to device `rank`, after ncclCommInitRank,
/// collecting the results (so each rank's buffers are allocated on its own device).
fn world<R: Send + 'static>(
    n: usize,
    f: impl Fn(usize, ncclComm_t) -> R + Send + Sync + 'static,
) -> Vec<R> {
    let id = nccl::get_unique_id().unwrap();
    let f = std::sync::Arc::new(f);
    let threads: Vec<_> = (0..n)
        .map(|r| {
            let f = f.clone();
            std::thread::spawn(move || {
                bind(r);
                let mut comm = null_mut();
                unsafe { nccl::comm_init_rank(&mut comm, n as i32, id, r as i32).unwrap() };
                let out = f(r, comm);
                let _ = unsafe { nccl::comm_abort(comm) };
                out
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn collectives_equal_plain_sums_and_copies() {
    let _timeout = default_timeout();
    let seed = fresh_seed("emu nccl collectives");
    for n in [2usize, 3] {
        for dt in [DType::F32, DType::BF16] {
            let count = 37;
            let inputs: Vec<(Vec<f64>, Vec<u8>)> = {
                let mut rng = Rng::new(seed ^ n as u64);
                (0..n).map(|_| random(count, dt, &mut rng)).collect()
            };
            let inputs = std::sync::Arc::new(inputs);
            let ins = inputs.clone();
            let ncclt = if dt == DType::F32 {
                ncclDataType_t::ncclFloat32
            } else {
                ncclDataType_t::ncclBfloat16
            };
            let outs = world(n, move |r, comm| unsafe {
                let send = DevBuf::upload(&ins[r].1);
                let mut sum = dev_nans(count, dt);
                let mut gathered = dev_nans(count * n, dt);
                let mut bcast = dev_nans(count, dt);
                // The sum inside a group, as src/comm/nccl.rs issues it.
                nccl::group_start().unwrap();
                nccl::all_reduce(
                    ptr(&send),
                    mptr(&mut sum),
                    count,
                    ncclt,
                    ncclRedOp_t::ncclSum,
                    comm,
                    null_mut(),
                )
                .unwrap();
                nccl::group_end().unwrap();
                nccl::all_gather(
                    ptr(&send),
                    mptr(&mut gathered),
                    count,
                    ncclt,
                    comm,
                    null_mut(),
                )
                .unwrap();
                nccl::broadcast(
                    ptr(&send),
                    mptr(&mut bcast),
                    count,
                    ncclt,
                    0,
                    comm,
                    null_mut(),
                )
                .unwrap();
                (
                    decode(&sum.download(), dt),
                    decode(&gathered.download(), dt),
                    decode(&bcast.download(), dt),
                )
            });
            // Rank-order sum, rounded to the type after each addition.
            let round = |v: f64| decode(&encode(&[v], dt), dt)[0];
            let want: Vec<f64> = (0..count)
                .map(|i| (1..n).fold(inputs[0].0[i], |a, r| round(a + inputs[r].0[i])))
                .collect();
            let all: Vec<f64> = inputs.iter().flat_map(|x| x.0.clone()).collect();
            for (r, (sum, gathered, bcast)) in outs.iter().enumerate() {
                assert_eq!(sum, &want, "{n} ranks {dt:?}: rank {r}'s sum");
                assert_eq!(gathered, &all, "{n} ranks {dt:?}: rank {r}'s gather");
                assert_eq!(
                    bcast, &inputs[0].0,
                    "{n} ranks {dt:?}: rank {r}'s broadcast"
                );
            }
        }
    }
}

#[test]
fn one_thread_drives_all_communicators_in_a_group() {
    let _timeout = default_timeout();
    let mut comms = [null_mut(); 2];
    let devices = [1, 0];
    unsafe { nccl::comm_init_all(comms.as_mut_ptr(), 2, devices.as_ptr()).unwrap() };
    let headers: Vec<Vec<u8>> = (0..2u64)
        .map(|r| {
            [r, 10 + r, 20 + r]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect()
        })
        .collect();
    // Rank r's buffers on its communicator's device, devices[r].
    let (send, mut recv): (Vec<DevBuf>, Vec<DevBuf>) = (0..2)
        .map(|r| {
            bind(devices[r] as usize);
            (DevBuf::upload(&headers[r]), DevBuf::upload(&[0u8; 48]))
        })
        .unzip();
    bind(0);
    nccl::group_start().unwrap();
    for r in 0..2 {
        unsafe {
            nccl::all_gather(
                ptr(&send[r]),
                mptr(&mut recv[r]),
                3,
                ncclDataType_t::ncclUint64,
                comms[r],
                null_mut(),
            )
            .unwrap()
        };
    }
    nccl::group_end().unwrap();
    let want: Vec<u8> = headers.concat();
    assert_eq!(recv[0].download(), want);
    assert_eq!(recv[1].download(), want);
    // Duplicate devices are refused, as NCCL's "Duplicate GPU detected".
    let r = unsafe { nccl::comm_init_all(comms.as_mut_ptr(), 2, [1, 1].as_ptr()) };
    assert_eq!(r.unwrap_err().result, ncclResult_t::ncclInvalidUsage);
    assert_eq!(
        nccl::group_end().unwrap_err().result,
        ncclResult_t::ncclInvalidUsage
    );
    for c in comms {
        unsafe { nccl::comm_abort(c).unwrap() };
    }
}

#[test]
fn a_count_mismatch_fails_on_every_rank() {
    let _timeout = default_timeout();
    let outs = world(3, |r, comm| unsafe {
        let count = if r == 2 { 4 } else { 5 };
        let send = DevBuf::upload(&encode(&[1.0; 5], DType::F32));
        let mut recv = dev_nans(5, DType::F32);
        let e = nccl::all_reduce(
            ptr(&send),
            mptr(&mut recv),
            count,
            ncclDataType_t::ncclFloat32,
            ncclRedOp_t::ncclSum,
            comm,
            null_mut(),
        );
        (
            e.map_err(|e| (e.result, e.detail)),
            decode(&recv.download(), DType::F32),
        )
    });
    for (r, (e, recv)) in outs.into_iter().enumerate() {
        let (code, detail) = e.expect_err("a mismatched count was accepted");
        assert_eq!(code, ncclResult_t::ncclInvalidUsage, "rank {r}: {detail}");
        assert!(detail.contains("rank 2"), "rank {r}: {detail}");
        assert!(recv.iter().all(|v| v.is_nan()), "rank {r}: recv written");
    }
}

#[test]
fn an_aborted_rank_makes_its_peers_fail_fast() {
    let _timeout = default_timeout();
    let start = Instant::now();
    let outs = world(2, |r, comm| unsafe {
        if r == 1 {
            std::thread::sleep(Duration::from_millis(50));
            nccl::comm_abort(comm).unwrap();
            return None;
        }
        let send = DevBuf::upload(&encode(&[1.0; 3], DType::F32));
        let mut recv = dev_nans(3, DType::F32);
        let e = nccl::all_reduce(
            ptr(&send),
            mptr(&mut recv),
            3,
            ncclDataType_t::ncclFloat32,
            ncclRedOp_t::ncclSum,
            comm,
            null_mut(),
        );
        Some(e.map_err(|e| (e.result, e.detail)))
    });
    let (code, detail) = outs[0]
        .clone()
        .unwrap()
        .expect_err("the peer of an aborted rank succeeded");
    assert_eq!(code, ncclResult_t::ncclRemoteError, "{detail}");
    assert!(detail.contains("rank 1 aborted"), "{detail}");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn init_refusals() {
    let _timeout = default_timeout();
    // nranks disagreeing under one id fails both ranks (real NCCL would hang).
    let id = nccl::get_unique_id().unwrap();
    let t: Vec<_> = [(2, 0), (3, 1)]
        .into_iter()
        .map(|(n, r)| {
            std::thread::spawn(move || {
                let mut comm = null_mut();
                unsafe { nccl::comm_init_rank(&mut comm, n, id, r) }.map_err(|e| e.result)
            })
        })
        .collect();
    let rs: Vec<_> = t.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        rs.iter().all(|r| *r == Err(ncclResult_t::ncclInvalidUsage)),
        "{rs:?}"
    );
    let mut comm = null_mut();
    let id = nccl::get_unique_id().unwrap();
    let e = unsafe { nccl::comm_init_rank(&mut comm, 2, id, 2) }.unwrap_err();
    assert_eq!(e.result, ncclResult_t::ncclInvalidArgument, "{e:?}");
    let fake = ncclUniqueId { internal: [7; 128] };
    let e = unsafe { nccl::comm_init_rank(&mut comm, 1, fake, 0) }.unwrap_err();
    assert_eq!(e.result, ncclResult_t::ncclInvalidArgument, "{e:?}");
    // Unique ids are unique.
    let (a, b) = (
        nccl::get_unique_id().unwrap(),
        nccl::get_unique_id().unwrap(),
    );
    assert_ne!(a.internal, b.internal);
}

#[test]
fn a_missing_peer_times_out_naming_it() {
    // Only shortens waits, and only while no other test of this file runs a collective.
    let _timeout = TIMEOUT.write().unwrap_or_else(|e| e.into_inner());
    std::env::set_var("SIMCLR_EMU_NCCL_TIMEOUT_S", "1");
    let mut comms = [null_mut(); 3];
    unsafe { nccl::comm_init_all(comms.as_mut_ptr(), 3, std::ptr::null()).unwrap() };
    // Rank r's buffers on device r (a null devlist puts rank r on device r).
    let mut bufs: Vec<(DevBuf, DevBuf)> = [0, 2]
        .into_iter()
        .map(|r| {
            bind(r);
            (
                DevBuf::upload(&encode(&[1.0; 2], DType::F32)),
                dev_nans(2, DType::F32),
            )
        })
        .collect();
    bind(0);
    let start = Instant::now();
    // Rank 0 and rank 2 call; rank 1 never does.
    nccl::group_start().unwrap();
    for (r, (send, recv)) in [0, 2].into_iter().zip(bufs.iter_mut()) {
        unsafe {
            nccl::broadcast(
                ptr(send),
                mptr(recv),
                2,
                ncclDataType_t::ncclFloat32,
                0,
                comms[r],
                null_mut(),
            )
            .unwrap()
        };
    }
    let e = nccl::group_end().unwrap_err();
    assert_eq!(e.result, ncclResult_t::ncclSystemError, "{e:?}");
    assert!(e.detail.contains("ranks [1]"), "{e:?}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    for c in comms {
        unsafe { nccl::comm_abort(c).unwrap() };
    }
    std::env::remove_var("SIMCLR_EMU_NCCL_TIMEOUT_S");
}

/// Polls ncclCommGetAsyncError until it is not ncclInProgress (or 30 s pass).
fn settle(comm: ncclComm_t) -> ncclResult_t {
    let t0 = Instant::now();
    loop {
        let s = unsafe { nccl::comm_get_async_error(comm) }.unwrap();
        if s != ncclResult_t::ncclInProgress || t0.elapsed() > Duration::from_secs(30) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn non_blocking_init_and_collectives_report_progress_then_faults() {
    let _timeout = default_timeout();
    let id = nccl::get_unique_id().unwrap();
    let init = move |r: usize| {
        bind(r);
        let mut comm = null_mut();
        unsafe { nccl::comm_init_rank_config(&mut comm, 2, id, r as i32, false) }.unwrap();
        comm
    };
    // Rank 0 alone: its init is in progress (and its collectives refused) until rank 1 joins.
    let c0 = init(0);
    let s = unsafe { nccl::comm_get_async_error(c0) }.unwrap();
    assert_eq!(s, ncclResult_t::ncclInProgress);
    assert!(unsafe { nccl::fault_detail(c0) }.contains("ranks [1] have not joined"));
    let early = unsafe {
        nccl::all_reduce(
            null_mut(),
            null_mut(),
            0,
            ncclDataType_t::ncclFloat32,
            ncclRedOp_t::ncclSum,
            c0,
            null_mut(),
        )
    };
    assert_eq!(early.unwrap_err().result, ncclResult_t::ncclInvalidUsage);
    let c1 = std::thread::spawn(move || init(1) as usize).join().unwrap() as ncclComm_t;
    assert_eq!(settle(c0), ncclResult_t::ncclSuccess);
    assert_eq!(settle(c1), ncclResult_t::ncclSuccess);
    // A collective returns once posted: in progress until the peer calls it.
    let one = |c: ncclComm_t| unsafe {
        nccl::all_reduce(
            null_mut(),
            null_mut(),
            0,
            ncclDataType_t::ncclFloat32,
            ncclRedOp_t::ncclSum,
            c,
            null_mut(),
        )
        .unwrap()
    };
    one(c0);
    let s = unsafe { nccl::comm_get_async_error(c0) }.unwrap();
    assert_eq!(s, ncclResult_t::ncclInProgress);
    assert!(unsafe { nccl::fault_detail(c0) }.contains("ranks [1] have not called"));
    one(c1);
    assert_eq!(settle(c0), ncclResult_t::ncclSuccess);
    assert_eq!(settle(c1), ncclResult_t::ncclSuccess);
    // Rank 1 dies: rank 0's next collective fails, and the error stays.
    unsafe { nccl::comm_abort(c1) }.unwrap();
    one(c0);
    assert_eq!(settle(c0), ncclResult_t::ncclRemoteError);
    let again = unsafe { nccl::comm_get_async_error(c0) }.unwrap();
    assert_eq!(again, ncclResult_t::ncclRemoteError);
    assert!(unsafe { nccl::fault_detail(c0) }.contains("rank 1 aborted"));
    unsafe { nccl::comm_abort(c0) }.unwrap();
}

#[test]
fn a_rank_that_aborts_during_a_non_blocking_init_fails_the_group() {
    let _timeout = default_timeout();
    let id = nccl::get_unique_id().unwrap();
    let init = move |r: usize| {
        bind(r);
        let mut comm = null_mut();
        unsafe { nccl::comm_init_rank_config(&mut comm, 3, id, r as i32, false) }.unwrap();
        comm
    };
    let c0 = init(0);
    let c1 = std::thread::spawn(move || init(1) as usize).join().unwrap() as ncclComm_t;
    unsafe { nccl::comm_abort(c1) }.unwrap();
    assert_eq!(settle(c0), ncclResult_t::ncclInvalidUsage);
    assert!(unsafe { nccl::fault_detail(c0) }.contains("rank 1 aborted before every rank joined"));
    unsafe { nccl::comm_abort(c0) }.unwrap();
}
