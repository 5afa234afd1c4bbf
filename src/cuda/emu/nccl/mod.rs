//! Emulated NCCL: communicators of ranks that are threads of this process, collectives that
//! rendezvous across ranks (`clique`), with their arguments checked as NCCL documents them.
//!
//! - `init`: unique ids, ncclCommInitRank / ncclCommInitAll / ncclCommAbort and their rules;
//! - `clique`: the rendezvous, timeouts and aborts;
//! - `exec`: the agreement checks and data movement of one collective (sums in rank order);
//! - this file: the collectives' per-call rules:
//!   a live communicator (`ncclInvalidArgument`); a data type NCCL knows, and a reduction op
//!   sum/prod/max/min/avg (`ncclInvalidArgument`); non-null buffers when count > 0
//!   (`ncclInvalidArgument`); broadcast root in 0..nranks (`ncclInvalidArgument`); buffers on
//!   the communicator's device when the runtime knows their device (`memory::device_of`,
//!   `ncclInvalidArgument`); exact extents: send count elements (`check_read`; for broadcast
//!   only the root's), recv count elements (count × nranks for all-gather, `check_write`).
//!   A refused call fails the collective on every rank (the refusing rank still takes its turn
//!   so its peers do not hang), and so does any disagreement of kind, count, dtype, op or root
//!   across ranks (`ncclInvalidUsage`). count = 0 is a no-op that still takes its turn.
//! - ncclGroupStart/End: calls inside a group are posted and their completion awaited at the
//!   outermost ncclGroupEnd (so one thread may drive every communicator of ncclCommInitAll);
//!   ncclGroupEnd without ncclGroupStart is `ncclInvalidUsage`.
//! - non-blocking communicators (ncclCommInitRankConfig with blocking = 0): a collective, or
//!   the ncclGroupEnd of a group of them, returns once posted; ncclCommGetAsyncError says
//!   ncclInProgress until it completed, then ncclSuccess, or the error (a peer that aborted,
//!   a refused or disagreeing call), which stays. Nothing times out here: as with real NCCL,
//!   the caller polls with its own deadline and aborts. A rank that "dies" simply stops calling
//!   (or aborts); a rank that "hangs" never calls: its peers see ncclInProgress.
//!
//! Emulated streams are synchronous; each rank's buffers are checked under its stream's
//! operation (`super::order`), so a missing event before or after a collective is caught. A
//! collective on a captured stream is refused (`ncclInvalidArgument`, on every rank like any
//! refusal): real NCCL records it in the graph, which this emulation does not do, and running
//! it at once would pass a test that a graph replay would fail.

#![allow(clippy::too_many_arguments)]

mod clique;
mod exec;
mod init;

pub use init::{comm_abort, comm_init_all, comm_init_rank, comm_init_rank_config, get_unique_id};

use super::registry::Registry;
use crate::cuda::driver::cu::CUstream;
use crate::cuda::driver::nccl::*;
use clique::{poisoned, Clique};
use exec::{Arrival, Kind};
use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::sync::Arc;
use std::time::Instant;

pub struct Comm {
    pub link: Link,
    pub rank: usize,
    pub device: usize,
    /// False for a communicator of a non-blocking init: its calls return once posted, and
    /// ncclCommGetAsyncError reports their progress.
    pub blocking: bool,
    /// Collectives of a non-blocking communicator not yet seen complete (sequence, call).
    pub pending: Vec<(u64, &'static str)>,
}

/// A communicator's ranks: still joining (the id's key), complete, or failed for good (the
/// sticky asynchronous error).
#[derive(Clone)]
pub enum Link {
    Joining(u64),
    Ready(Arc<Clique>),
    Failed(NcclError),
}

pub static COMMS: Registry<Comm> = Registry::new();

fn comm_handle(c: Comm) -> Result<ncclComm_t> {
    COMMS
        .insert(c)
        .map(|a| a as ncclComm_t)
        .map_err(|_| poisoned())
}

/// A collective posted inside a group: its ranks, this rank, its sequence number, the call,
/// and the communicator when it is non-blocking (its completion is then polled, not awaited).
type Posted = (Arc<Clique>, usize, u64, &'static str, Option<usize>);

thread_local! {
    /// The depth of ncclGroupStart nesting, and the collectives posted inside the group.
    static GROUP: RefCell<(usize, Vec<Posted>)> = const { RefCell::new((0, Vec::new())) };
}

fn arg(d: String) -> NcclError {
    NcclError::new(ncclResult_t::ncclInvalidArgument, d)
}

/// Checks one buffer: non-null when it has bytes, on the communicator's device, exact extent.
fn buffer(
    who: &str,
    name: &str,
    ptr: u64,
    bytes: usize,
    device: usize,
    write: bool,
) -> std::result::Result<(), String> {
    if bytes == 0 {
        return Ok(());
    }
    if ptr == 0 {
        return Err(format!("{who}: {name} is null ({bytes} bytes)"));
    }
    if let Some(d) = crate::cuda::emu::memory::device_of(ptr) {
        if d != device {
            return Err(format!(
                "{who}: {name} {ptr:#x} is on device {d}; the communicator's rank is on device {device}"
            ));
        }
    }
    let label = format!("{who} {name}");
    if write {
        crate::cuda::emu::memory::check_write(ptr, bytes, &label)
    } else {
        crate::cuda::emu::memory::check_read(ptr, bytes, &label)
    }
}

/// The stream operation of a collective on `comm`: each rank checks its own buffers under its
/// own stream (`buffer`); the data moves later, once for all ranks, outside any stream operation.
/// A null stream is the device of the communicator's rank (the calling thread's for an unknown
/// communicator, which the call then refuses).
fn stream_op(
    comm: ncclComm_t,
    stream: CUstream,
    what: &'static std::ffi::CStr,
) -> crate::cuda::emu::order::OpGuard {
    let device = COMMS
        .with(comm as usize, |c| c.device)
        .ok()
        .flatten()
        .unwrap_or_else(crate::cuda::emu::memory::current_device);
    crate::cuda::emu::order::op_on(stream, device, what)
}

/// One collective call: local checks, post, and (outside a group) the wait.
fn collective(who: &'static str, comm: ncclComm_t, mut a: Arrival) -> Result<()> {
    let (link, rank, device, blocking) = COMMS
        .with(comm as usize, |c| {
            (c.link.clone(), c.rank, c.device, c.blocking)
        })
        .map_err(|_| poisoned())?
        .ok_or_else(|| {
            arg(format!(
                "{who}: {:#x} is not a live communicator",
                comm as usize
            ))
        })?;
    let clique = match link {
        Link::Ready(c) => c,
        Link::Joining(_) => {
            return Err(NcclError::new(
                ncclResult_t::ncclInvalidUsage,
                format!("{who}: the communicator is still joining (poll ncclCommGetAsyncError until it is not ncclInProgress)"),
            ))
        }
        Link::Failed(e) => return Err(e),
    };
    let n = clique.nranks;
    let local = (|| {
        if crate::cuda::emu::graph::capturing() {
            return Err(format!(
                "{who} on a captured stream: the emulation runs collectives as they are called \
                 and cannot record one in a graph (real NCCL can); capture is for single-device \
                 steps here"
            ));
        }
        let es = exec::size_of(a.dtype)
            .ok_or_else(|| format!("{who}: data type {:?} is not an NCCL data type", a.dtype))?;
        let bytes = a.count * es;
        match a.kind {
            Kind::AllReduce(op) => {
                use ncclRedOp_t::*;
                if !matches!(op, ncclSum | ncclProd | ncclMax | ncclMin | ncclAvg) {
                    return Err(format!(
                        "{who}: op {op:?}; allowed sum, prod, max, min, avg"
                    ));
                }
                buffer(who, "sendbuff", a.send, bytes, device, false)?;
                buffer(who, "recvbuff", a.recv, bytes, device, true)
            }
            Kind::AllGather => {
                buffer(who, "sendbuff", a.send, bytes, device, false)?;
                buffer(
                    who,
                    "recvbuff (count × nranks)",
                    a.recv,
                    bytes * n,
                    device,
                    true,
                )
            }
            Kind::Broadcast(root) => {
                if root < 0 || root as usize >= n {
                    return Err(format!("{who}: root = {root}; must be in 0..{n}"));
                }
                if rank == root as usize {
                    buffer(who, "sendbuff", a.send, bytes, device, false)?;
                }
                buffer(who, "recvbuff", a.recv, bytes, device, true)
            }
        }
    })();
    if let Err(d) = &local {
        a.refused = Some(format!("rank {rank}: {d}"));
    }
    let seq = clique.post(rank, a)?;
    if let Err(d) = local {
        // The refusal is posted (peers fail at once); this rank returns its own error.
        return Err(arg(d));
    }
    let nonblocking = (!blocking).then_some(comm as usize);
    let in_group = GROUP.with(|g| {
        let mut g = g.borrow_mut();
        if g.0 > 0 {
            g.1.push((clique.clone(), rank, seq, who, nonblocking));
            true
        } else {
            false
        }
    });
    match (in_group, nonblocking) {
        (true, _) => Ok(()),
        (false, Some(addr)) => track(addr, seq, who),
        (false, None) => clique.wait(rank, seq, who, Instant::now() + clique::timeout()),
    }
}

/// Leaves collective `seq` to ncclCommGetAsyncError of the non-blocking communicator `addr`.
fn track(addr: usize, seq: u64, who: &'static str) -> Result<()> {
    COMMS
        .with(addr, |c| c.pending.push((seq, who)))
        .map_err(|_| poisoned())?
        .ok_or_else(|| arg(format!("{who}: {addr:#x} is not a live communicator")))
}

/// ncclCommGetAsyncError: ncclInProgress while a non-blocking init or a posted collective is
/// not complete, ncclSuccess once all are, else the communicator's error (sticky, as NCCL's).
///
/// # Safety
/// A communicator from this module.
pub unsafe fn comm_get_async_error(comm: ncclComm_t) -> Result<ncclResult_t> {
    let addr = comm as usize;
    let gone = || {
        arg(format!(
            "ncclCommGetAsyncError: {addr:#x} is not a live communicator"
        ))
    };
    let (link, rank, pending) = COMMS
        .with(addr, |c| (c.link.clone(), c.rank, c.pending.clone()))
        .map_err(|_| poisoned())?
        .ok_or_else(gone)?;
    let fail = |e: NcclError| -> Result<ncclResult_t> {
        let code = e.result;
        COMMS
            .with(addr, |c| c.link = Link::Failed(e))
            .map_err(|_| poisoned())?;
        Ok(code)
    };
    let clique = match link {
        Link::Failed(e) => return Ok(e.result),
        Link::Ready(c) => c,
        // Read PENDING with COMMS unlocked: init locks them in the other order.
        Link::Joining(key) => match init::join_state(key, rank)? {
            None => return Ok(ncclResult_t::ncclInProgress),
            Some(Err(e)) => return fail(e),
            Some(Ok(c)) => {
                COMMS
                    .with(addr, |x| x.link = Link::Ready(c.clone()))
                    .map_err(|_| poisoned())?;
                c
            }
        },
    };
    let mut done = 0;
    for &(seq, who) in &pending {
        match clique.poll(rank, seq, who) {
            Ok(Some(())) => done += 1,
            Ok(None) => break,
            Err(e) => {
                COMMS
                    .with(addr, |c| {
                        c.pending.drain(..=done);
                    })
                    .map_err(|_| poisoned())?;
                return fail(e);
            }
        }
    }
    COMMS
        .with(addr, |c| {
            c.pending.drain(..done);
        })
        .map_err(|_| poisoned())?;
    Ok(if done < pending.len() {
        ncclResult_t::ncclInProgress
    } else {
        ncclResult_t::ncclSuccess
    })
}

/// What the emulation knows about a communicator's fault or wait, for error messages: its
/// error, or the ranks it still waits for (real NCCL cannot say; empty then).
///
/// # Safety
/// A communicator from this module, or one already aborted (then nothing is said).
pub unsafe fn fault_detail(comm: ncclComm_t) -> String {
    let Ok(Some((link, pending))) = COMMS.with(comm as usize, |c| {
        (c.link.clone(), c.pending.first().copied())
    }) else {
        return String::new();
    };
    match (link, pending) {
        (Link::Failed(e), _) => e.detail,
        (Link::Joining(key), _) => {
            format!(
                "emulated NCCL: ranks {:?} have not joined",
                init::join_missing(key)
            )
        }
        (Link::Ready(c), Some((seq, who))) => match c.missing(seq) {
            Ok(m) if !m.is_empty() => {
                format!("emulated NCCL: ranks {m:?} have not called this {who}")
            }
            _ => String::new(),
        },
        (Link::Ready(_), None) => String::new(),
    }
}

/// # Safety
/// As ncclAllReduce.
pub unsafe fn all_reduce(
    send: *const c_void,
    recv: *mut c_void,
    count: usize,
    dtype: ncclDataType_t,
    op: ncclRedOp_t,
    comm: ncclComm_t,
    stream: CUstream,
) -> Result<()> {
    let _op = stream_op(comm, stream, c"ncclAllReduce");
    let a = Arrival {
        kind: Kind::AllReduce(op),
        send: send as u64,
        recv: recv as u64,
        count,
        dtype,
        refused: None,
    };
    collective("ncclAllReduce", comm, a)
}
/// # Safety
/// As ncclAllGather.
pub unsafe fn all_gather(
    send: *const c_void,
    recv: *mut c_void,
    count: usize,
    dtype: ncclDataType_t,
    comm: ncclComm_t,
    stream: CUstream,
) -> Result<()> {
    let _op = stream_op(comm, stream, c"ncclAllGather");
    let a = Arrival {
        kind: Kind::AllGather,
        send: send as u64,
        recv: recv as u64,
        count,
        dtype,
        refused: None,
    };
    collective("ncclAllGather", comm, a)
}
/// # Safety
/// As ncclBroadcast.
pub unsafe fn broadcast(
    send: *const c_void,
    recv: *mut c_void,
    count: usize,
    dtype: ncclDataType_t,
    root: c_int,
    comm: ncclComm_t,
    stream: CUstream,
) -> Result<()> {
    let _op = stream_op(comm, stream, c"ncclBroadcast");
    let a = Arrival {
        kind: Kind::Broadcast(root),
        send: send as u64,
        recv: recv as u64,
        count,
        dtype,
        refused: None,
    };
    collective("ncclBroadcast", comm, a)
}
pub fn group_start() -> Result<()> {
    GROUP.with(|g| g.borrow_mut().0 += 1);
    Ok(())
}
pub fn group_end() -> Result<()> {
    let pending = GROUP.with(|g| {
        let mut g = g.borrow_mut();
        match g.0 {
            0 => Err(NcclError::new(
                ncclResult_t::ncclInvalidUsage,
                "ncclGroupEnd without a matching ncclGroupStart",
            )),
            1 => {
                g.0 = 0;
                Ok(std::mem::take(&mut g.1))
            }
            _ => {
                g.0 -= 1;
                Ok(Vec::new())
            }
        }
    })?;
    // Every posted collective is awaited (so none is left behind); the first error is returned.
    // One deadline for the whole group: a missing peer costs one timeout, not one per call.
    let deadline = Instant::now() + clique::timeout();
    let mut first = Ok(());
    for (clique, rank, seq, who, nonblocking) in pending {
        let r = match nonblocking {
            Some(addr) => track(addr, seq, who),
            None => clique.wait(rank, seq, who, deadline),
        };
        if first.is_ok() {
            first = r;
        }
    }
    first
}
