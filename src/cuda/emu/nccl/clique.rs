//! The ranks of one communicator and the rendezvous of their collectives.
//!
//! Each rank's k-th collective is matched with every other rank's k-th (NCCL requires that all
//! ranks issue the same collectives in the same order). A call posts its arrival; the last rank
//! to arrive checks that all arrivals agree, executes the collective (reading every send buffer
//! before writing any receive buffer, so in-place calls work) and publishes one result that every
//! rank then returns. Outside a group the call waits for that result (emulated streams are
//! synchronous); inside a group, `ncclGroupEnd` waits. A rank that aborted, or a result that
//! does not come within the timeout (`SIMCLR_EMU_NCCL_TIMEOUT_S`, default 60 s), fails the wait
//! with an error naming the missing ranks, where real NCCL would hang. A non-blocking
//! communicator does not wait: its caller polls ([`Clique::poll`]) and keeps its own deadline.

use super::exec::{self, Arrival};
use crate::cuda::driver::nccl::{ncclResult_t, NcclError, Result};
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a rank waits for its peers.
pub fn timeout() -> Duration {
    let s = std::env::var("SIMCLR_EMU_NCCL_TIMEOUT_S")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(60.0);
    Duration::from_secs_f64(s)
}

pub fn poisoned() -> NcclError {
    NcclError::new(
        ncclResult_t::ncclInternalError,
        "the emulated communicator's state was poisoned by a panic",
    )
}

struct Op {
    arrivals: Vec<Option<Arrival>>,
    result: Option<std::result::Result<(), (ncclResult_t, String)>>,
    collected: usize,
}

#[derive(Default)]
struct State {
    aborted: Vec<bool>,
    next_seq: Vec<u64>,
    ops: HashMap<u64, Op>,
}

pub struct Clique {
    pub nranks: usize,
    /// The device of each rank.
    pub devices: Vec<usize>,
    state: Mutex<State>,
    cv: Condvar,
}

impl Clique {
    pub fn new(devices: Vec<usize>) -> Self {
        let n = devices.len();
        Clique {
            nranks: n,
            devices,
            state: Mutex::new(State {
                aborted: vec![false; n],
                next_seq: vec![0; n],
                ops: HashMap::new(),
            }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| poisoned())
    }

    /// Posts `rank`'s next collective; executes it when it is the last to arrive. Returns the
    /// sequence number to wait on.
    pub fn post(&self, rank: usize, a: Arrival) -> Result<u64> {
        let mut st = self.lock()?;
        if st.aborted[rank] {
            return Err(NcclError::new(
                ncclResult_t::ncclInvalidUsage,
                format!("rank {rank}'s communicator was aborted"),
            ));
        }
        let seq = st.next_seq[rank];
        st.next_seq[rank] += 1;
        let n = self.nranks;
        let op = st.ops.entry(seq).or_insert_with(|| Op {
            arrivals: (0..n).map(|_| None).collect(),
            result: None,
            collected: 0,
        });
        op.arrivals[rank] = Some(a);
        if op.arrivals.iter().all(Option::is_some) {
            let all: Vec<&Arrival> = op.arrivals.iter().flatten().collect();
            // SAFETY: every arrival's buffers were validated at its call; `execute` checks each
            // range again before it touches it.
            op.result = Some(crate::cuda::emu::order::untracked(|| unsafe {
                exec::execute(&all, &self.devices)
            }));
            self.cv.notify_all();
        }
        Ok(seq)
    }

    /// Where collective `seq` of `rank` stands: `Some` with its outcome once every rank arrived
    /// (the outcome is then collected), `None` while peers are missing; an error at once when a
    /// missing peer aborted its communicator.
    fn check(&self, st: &mut State, rank: usize, seq: u64, what: &str) -> Result<Option<()>> {
        let n = self.nranks;
        let aborted = st.aborted.clone();
        let Some(op) = st.ops.get_mut(&seq) else {
            return Err(NcclError::new(
                ncclResult_t::ncclInternalError,
                format!("{what}: collective {seq} of rank {rank} is unknown"),
            ));
        };
        if let Some(r) = op.result.clone() {
            op.collected += 1;
            if op.collected == n {
                st.ops.remove(&seq);
            }
            return r
                .map(Some)
                .map_err(|(code, d)| NcclError::new(code, format!("{what}: {d}")));
        }
        let missing = (0..n).filter(|&r| op.arrivals[r].is_none());
        if let Some(dead) = missing.into_iter().find(|&r| aborted[r]) {
            return Err(NcclError::new(
                ncclResult_t::ncclRemoteError,
                format!("{what}: rank {dead} aborted its communicator before joining this collective (rank {rank} waited)"),
            ));
        }
        Ok(None)
    }

    /// Waits until `deadline` for the result of collective `seq` on `rank`.
    pub fn wait(&self, rank: usize, seq: u64, what: &str, deadline: Instant) -> Result<()> {
        let mut st = self.lock()?;
        loop {
            if self.check(&mut st, rank, seq, what)?.is_some() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                let missing = self.missing_in(&st, seq);
                return Err(NcclError::new(
                    ncclResult_t::ncclSystemError,
                    format!(
                        "{what}: rank {rank} timed out after {:?} waiting for ranks {missing:?} \
                         (SIMCLR_EMU_NCCL_TIMEOUT_S); real NCCL would hang",
                        timeout()
                    ),
                ));
            }
            st = self
                .cv
                .wait_timeout(st, deadline - now)
                .map_err(|_| poisoned())?
                .0;
        }
    }

    /// The outcome of collective `seq` of `rank` if it is there, without waiting (the
    /// asynchronous error query of a non-blocking communicator).
    pub fn poll(&self, rank: usize, seq: u64, what: &str) -> Result<Option<()>> {
        let mut st = self.lock()?;
        self.check(&mut st, rank, seq, what)
    }

    /// The ranks that have not yet called collective `seq`.
    pub fn missing(&self, seq: u64) -> Result<Vec<usize>> {
        Ok(self.missing_in(&*self.lock()?, seq))
    }

    fn missing_in(&self, st: &State, seq: u64) -> Vec<usize> {
        match st.ops.get(&seq) {
            Some(op) => (0..self.nranks)
                .filter(|&r| op.arrivals[r].is_none())
                .collect(),
            None => Vec::new(),
        }
    }

    /// Marks `rank` aborted and wakes its peers.
    pub fn abort(&self, rank: usize) -> Result<()> {
        self.lock()?.aborted[rank] = true;
        self.cv.notify_all();
        Ok(())
    }
}
