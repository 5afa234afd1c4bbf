//! Unique ids and communicator creation of the emulated NCCL.
//!
//! Rules (NCCL 2.x documentation of ncclGetUniqueId, ncclCommInitRank, ncclCommInitAll,
//! ncclCommAbort):
//! - every `ncclGetUniqueId` returns a new id; an id not made by it is `ncclInvalidArgument`;
//! - `ncclCommInitRank`: `comm` non-null, nranks ≥ 1, 0 ≤ rank < nranks (`ncclInvalidArgument`);
//!   it blocks until all nranks ranks of the id joined (ranks are threads of this process, each
//!   joining on its own thread); a duplicate rank or a different nranks for one id is
//!   `ncclInvalidUsage` and fails every rank of that id (real NCCL would hang); joiners give up
//!   after the timeout, naming the ranks that never came. The rank's device is the thread's
//!   current device (`memory::current_device`);
//! - `ncclCommInitAll`: ndev ≥ 1, `comms` non-null, device ordinals in range
//!   (`ncclInvalidArgument`), no device twice (`ncclInvalidUsage`, NCCL's "Duplicate GPU
//!   detected"); a null devlist means devices 0..ndev;
//! - `ncclCommInitRankConfig`: as ncclCommInitRank when blocking; non-blocking (config.blocking
//!   = 0) it returns at once and ncclCommGetAsyncError reports ncclInProgress until every rank
//!   joined (no timeout of its own: the caller polls with its deadline, as with real NCCL);
//! - `ncclCommAbort`: a live communicator (`ncclInvalidArgument`); it frees the rank and fails
//!   its peers' pending and later collectives with an error naming it (or, during a
//!   non-blocking init, the group being formed).

use super::clique::{poisoned, timeout, Clique};
use super::{comm_handle, Comm, Link, COMMS};
use crate::cuda::driver::nccl::{ncclComm_t, ncclResult_t, ncclUniqueId, NcclError, Result};
use crate::cuda::emu::memory;
use std::collections::{HashMap, HashSet};
use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

const MAGIC: &[u8; 16] = b"simclr-emu-nccl\0";

fn arg(d: impl Into<String>) -> NcclError {
    NcclError::new(ncclResult_t::ncclInvalidArgument, d)
}
fn usage(d: impl Into<String>) -> NcclError {
    NcclError::new(ncclResult_t::ncclInvalidUsage, d)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub fn get_unique_id() -> Result<ncclUniqueId> {
    let mut b = [0u8; 128];
    b[..16].copy_from_slice(MAGIC);
    b[16..24].copy_from_slice(&NEXT_ID.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    b[24..28].copy_from_slice(&std::process::id().to_le_bytes());
    Ok(ncclUniqueId {
        internal: b.map(|v| v as std::ffi::c_char),
    })
}

/// The serial number of an id made by [`get_unique_id`] in this process.
fn serial(id: &ncclUniqueId) -> Option<u64> {
    let b = id.internal.map(|c| c as u8);
    let ours = &b[..16] == MAGIC && b[24..28] == std::process::id().to_le_bytes();
    let n = u64::from_le_bytes(b[16..24].try_into().ok()?);
    (ours && n > 0 && n < NEXT_ID.load(Ordering::Relaxed)).then_some(n)
}

/// Ranks gathering under one id.
struct Pending {
    nranks: usize,
    devices: Vec<Option<usize>>,
    clique: Option<Arc<Clique>>,
    failed: Option<String>,
}

static PENDING: Mutex<Option<HashMap<u64, Pending>>> = Mutex::new(None);
static JOINED: Condvar = Condvar::new();

/// Registers `rank` under `id` (the checks above); returns the id's key and the rank.
fn join(who: &str, nranks: c_int, id: &ncclUniqueId, rank: c_int) -> Result<(u64, usize)> {
    if nranks < 1 {
        return Err(arg(format!("{who}: nranks = {nranks}; must be >= 1")));
    }
    let key = serial(id).ok_or_else(|| {
        arg(format!(
            "{who}: the unique id was not made by ncclGetUniqueId"
        ))
    })?;
    let mut guard = PENDING.lock().map_err(|_| poisoned())?;
    let table = guard.get_or_insert_with(HashMap::new);
    let n = nranks as usize;
    let p = table.entry(key).or_insert_with(|| Pending {
        nranks: n,
        devices: vec![None; n],
        clique: None,
        failed: None,
    });
    // A refusal also fails every rank of the id: they would otherwise wait for this one.
    let refusal = if rank < 0 || rank >= nranks {
        Some(arg(format!("{who}: rank = {rank}; must be in 0..{nranks}")))
    } else if p.nranks != n {
        Some(usage(format!(
            "{who}: rank {rank} passes nranks = {nranks}, an earlier rank of this id {}",
            p.nranks
        )))
    } else if p.devices[rank as usize].is_some() {
        Some(usage(format!("{who}: rank {rank} joined this id twice")))
    } else if p.clique.is_some() {
        Some(usage(format!(
            "{who}: this id's communicator is already complete"
        )))
    } else {
        None
    };
    if let Some(e) = refusal {
        if p.clique.is_none() {
            p.failed.get_or_insert_with(|| e.detail.clone());
            JOINED.notify_all();
        }
        return Err(e);
    }
    let r = rank as usize;
    p.devices[r] = Some(memory::current_device());
    if p.devices.iter().all(Option::is_some) && p.failed.is_none() {
        let devices = p.devices.iter().map(|d| d.unwrap_or(0)).collect();
        p.clique = Some(Arc::new(Clique::new(devices)));
        JOINED.notify_all();
    }
    Ok((key, r))
}

/// Where the group of `key` stands for `rank`: `None` while ranks are missing, its ranks once
/// complete, or why it failed.
pub fn join_state(key: u64, rank: usize) -> Result<Option<Result<Arc<Clique>>>> {
    let guard = PENDING.lock().map_err(|_| poisoned())?;
    let Some(p) = guard.as_ref().and_then(|t| t.get(&key)) else {
        return Err(usage("the id's pending group vanished"));
    };
    if let Some(f) = &p.failed {
        return Ok(Some(Err(usage(format!(
            "ncclCommInitRankConfig: rank {rank}: the group failed: {f}"
        )))));
    }
    Ok(p.clique.clone().map(Ok))
}

/// The ranks of group `key` that have not joined yet.
pub fn join_missing(key: u64) -> Vec<usize> {
    let Ok(guard) = PENDING.lock() else {
        return Vec::new();
    };
    match guard.as_ref().and_then(|t| t.get(&key)) {
        Some(p) if p.clique.is_none() => {
            (0..p.nranks).filter(|&i| p.devices[i].is_none()).collect()
        }
        _ => Vec::new(),
    }
}

/// # Safety
/// `comm` is null or writable.
pub unsafe fn comm_init_rank(
    comm: *mut ncclComm_t,
    nranks: c_int,
    id: ncclUniqueId,
    rank: c_int,
) -> Result<()> {
    let who = "ncclCommInitRank";
    if comm.is_null() {
        return Err(arg(format!("{who}: comm is null")));
    }
    let (key, r) = join(who, nranks, &id, rank)?;
    let deadline = Instant::now() + timeout();
    let mut guard = PENDING.lock().map_err(|_| poisoned())?;
    loop {
        let table = guard.get_or_insert_with(HashMap::new);
        let Some(p) = table.get(&key) else {
            return Err(usage(format!("{who}: the id's pending group vanished")));
        };
        if let Some(f) = &p.failed {
            return Err(usage(format!("{who}: rank {r}: the group failed: {f}")));
        }
        if let Some(c) = &p.clique {
            let c = c.clone();
            *comm = comm_handle(Comm {
                device: c.devices[r],
                link: Link::Ready(c),
                rank: r,
                blocking: true,
                pending: Vec::new(),
            })?;
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            let missing: Vec<usize> = (0..p.nranks).filter(|&i| p.devices[i].is_none()).collect();
            return Err(NcclError::new(
                ncclResult_t::ncclSystemError,
                format!(
                    "{who}: rank {r} timed out after {:?}: ranks {missing:?} never joined",
                    timeout()
                ),
            ));
        }
        guard = JOINED
            .wait_timeout(guard, deadline - now)
            .map_err(|_| poisoned())?
            .0;
    }
}

/// ncclCommInitRankConfig: with `blocking` as ncclCommInitRank; without, the communicator is
/// made at once, still joining: ncclCommGetAsyncError says ncclInProgress until every rank
/// joined, and the caller keeps the deadline (nothing times out here, as in real NCCL).
///
/// # Safety
/// `comm` is null or writable.
pub unsafe fn comm_init_rank_config(
    comm: *mut ncclComm_t,
    nranks: c_int,
    id: ncclUniqueId,
    rank: c_int,
    blocking: bool,
) -> Result<()> {
    if blocking {
        return comm_init_rank(comm, nranks, id, rank);
    }
    let who = "ncclCommInitRankConfig";
    if comm.is_null() {
        return Err(arg(format!("{who}: comm is null")));
    }
    let (key, r) = join(who, nranks, &id, rank)?;
    *comm = comm_handle(Comm {
        device: memory::current_device(),
        link: Link::Joining(key),
        rank: r,
        blocking: false,
        pending: Vec::new(),
    })?;
    Ok(())
}

/// # Safety
/// `comms` has room for `ndev` communicators; `devlist` is null or holds `ndev` ordinals.
pub unsafe fn comm_init_all(
    comms: *mut ncclComm_t,
    ndev: c_int,
    devlist: *const c_int,
) -> Result<()> {
    let who = "ncclCommInitAll";
    if ndev < 1 {
        return Err(arg(format!("{who}: ndev = {ndev}; must be >= 1")));
    }
    if comms.is_null() {
        return Err(arg(format!("{who}: comms is null")));
    }
    let n = ndev as usize;
    let list: Vec<c_int> = if devlist.is_null() {
        (0..ndev).collect()
    } else {
        std::slice::from_raw_parts(devlist, n).to_vec()
    };
    let count = crate::cuda::emu::cu::DEVICE_COUNT;
    let mut seen = HashSet::new();
    for (r, &d) in list.iter().enumerate() {
        if d < 0 || d >= count {
            return Err(arg(format!(
                "{who}: devlist[{r}] = {d}; the emulated devices are 0..{count}"
            )));
        }
        if !seen.insert(d) {
            return Err(usage(format!(
                "{who}: duplicate GPU detected: device {d} appears twice in devlist"
            )));
        }
    }
    let clique = Arc::new(Clique::new(list.iter().map(|&d| d as usize).collect()));
    let mut made = Vec::with_capacity(n);
    for (r, &d) in list.iter().enumerate() {
        made.push(comm_handle(Comm {
            link: Link::Ready(clique.clone()),
            rank: r,
            device: d as usize,
            blocking: true,
            pending: Vec::new(),
        })?);
    }
    for (r, c) in made.into_iter().enumerate() {
        *comms.add(r) = c;
    }
    Ok(())
}

/// # Safety
/// A communicator from this module.
pub unsafe fn comm_abort(comm: ncclComm_t) -> Result<()> {
    let (link, rank) = COMMS
        .with(comm as usize, |c| (c.link.clone(), c.rank))
        .map_err(|_| poisoned())?
        .ok_or_else(|| {
            arg(format!(
                "ncclCommAbort: {:#x} is not a live communicator",
                comm as usize
            ))
        })?;
    COMMS.remove(comm as usize).map_err(|_| poisoned())?;
    match link {
        Link::Ready(c) => c.abort(rank),
        // A rank that leaves a group still forming fails it: its peers would wait for it.
        Link::Joining(key) => {
            let mut guard = PENDING.lock().map_err(|_| poisoned())?;
            if let Some(p) = guard.as_mut().and_then(|t| t.get_mut(&key)) {
                if p.clique.is_none() {
                    p.failed.get_or_insert_with(|| {
                        format!("rank {rank} aborted before every rank joined")
                    });
                    JOINED.notify_all();
                }
            }
            Ok(())
        }
        Link::Failed(_) => Ok(()),
    }
}
