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
//! - `ncclCommAbort`: a live communicator (`ncclInvalidArgument`); it frees the rank and fails
//!   its peers' pending and later collectives with an error naming it.

use super::clique::{poisoned, timeout, Clique};
use super::{comm_handle, Comm, COMMS};
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
    if nranks < 1 {
        return Err(arg(format!("{who}: nranks = {nranks}; must be >= 1")));
    }
    let key = serial(&id).ok_or_else(|| {
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
    let deadline = Instant::now() + timeout();
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
                clique: c,
                rank: r,
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
            clique: clique.clone(),
            rank: r,
            device: d as usize,
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
    let c = COMMS
        .with(comm as usize, |c| (c.clique.clone(), c.rank))
        .map_err(|_| poisoned())?
        .ok_or_else(|| {
            arg(format!(
                "ncclCommAbort: {:#x} is not a live communicator",
                comm as usize
            ))
        })?;
    COMMS.remove(comm as usize).map_err(|_| poisoned())?;
    c.0.abort(c.1)
}
