//! The NCCL calls the backend makes: unique ids, communicators (one per rank, or all of one
//! process's GPUs at once, blocking or not), the asynchronous error query, the collectives,
//! groups and error strings.

use super::counters::{self as c, bump};
use super::route;
use cudarc::nccl::{result, sys};
use std::ffi::{c_int, c_void};

pub use sys::{ncclComm_t, ncclDataType_t, ncclRedOp_t, ncclResult_t, ncclUniqueId};

/// A failed NCCL call: its result, and what the emulated library found (empty on a GPU).
#[derive(Clone)]
pub struct NcclError {
    pub result: ncclResult_t,
    pub detail: String,
}

impl NcclError {
    pub fn new(result: ncclResult_t, detail: impl Into<String>) -> Self {
        NcclError {
            result,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Debug for NcclError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{:?}", self.result)
        } else {
            write!(f, "{:?}: {}", self.result, self.detail)
        }
    }
}

pub type Result<T> = std::result::Result<T, NcclError>;

fn real<T>(r: std::result::Result<T, result::NcclError>) -> Result<()> {
    r.map(|_| ()).map_err(|e| NcclError::new(e.0, ""))
}

pub fn is_present() -> bool {
    route!(real => unsafe { sys::is_culib_present() }, emu => true)
}

/// NCCL's own description of a result code.
pub fn error_string(r: ncclResult_t) -> String {
    route!(
        real => unsafe {
            let s = sys::ncclGetErrorString(r);
            if s.is_null() {
                format!("{r:?}")
            } else {
                std::ffi::CStr::from_ptr(s).to_string_lossy().into_owned()
            }
        },
        emu => format!("{r:?} (emulated NCCL)"),
    )
}

pub fn get_unique_id() -> Result<ncclUniqueId> {
    route!(
        real => result::get_uniqueid().map_err(|e| NcclError::new(e.0, "")),
        emu => crate::cuda::emu::nccl::get_unique_id(),
    )
}

/// # Safety
/// `comm` is writable; the calling thread's current device is this rank's GPU.
pub unsafe fn comm_init_rank(
    comm: *mut ncclComm_t,
    nranks: c_int,
    id: ncclUniqueId,
    rank: c_int,
) -> Result<()> {
    route!(
        real => real(result::comm_init_rank(comm, nranks, id, rank)),
        emu => crate::cuda::emu::nccl::comm_init_rank(comm, nranks, id, rank),
    )
}

/// ncclCommInitRankConfig with only `blocking` set (every other field left to NCCL). A
/// non-blocking init returns at once; [`comm_get_async_error`] says when it is done.
///
/// # Safety
/// `comm` is writable; the calling thread's current device is this rank's GPU.
pub unsafe fn comm_init_rank_config(
    comm: *mut ncclComm_t,
    nranks: c_int,
    id: ncclUniqueId,
    rank: c_int,
    blocking: bool,
) -> Result<()> {
    route!(
        real => {
            let mut config = default_config(blocking);
            real(result::comm_init_rank_config(comm, nranks, id, rank, &mut config))
        },
        emu => crate::cuda::emu::nccl::comm_init_rank_config(comm, nranks, id, rank, blocking),
    )
}

/// NCCL_CONFIG_INITIALIZER with `blocking`: the magic, this header's size and the library's
/// version, every other field undefined (INT_MIN, null) so NCCL picks it. cudarc's struct is
/// NCCL 2.30's (96 bytes); an older NCCL copies only its own sizeof of it (2.28: 80 bytes), and
/// tests/library_headers.rs checks that each of 2.28's fields is where 2.28 reads it.
fn default_config(blocking: bool) -> sys::ncclConfig_t {
    const UNDEF: c_int = c_int::MIN;
    let mut version: c_int = 0;
    // The library's own version tells it which fields this struct holds; 2.30 if it cannot say.
    if unsafe { sys::ncclGetVersion(&mut version) } != ncclResult_t::ncclSuccess || version <= 0 {
        version = 23000;
    }
    sys::ncclConfig_t {
        size: std::mem::size_of::<sys::ncclConfig_t>(),
        magic: 0xcafe_beef,
        version: version as std::ffi::c_uint,
        blocking: blocking as c_int,
        cgaClusterSize: UNDEF,
        minCTAs: UNDEF,
        maxCTAs: UNDEF,
        netName: std::ptr::null(),
        splitShare: UNDEF,
        trafficClass: UNDEF,
        commName: std::ptr::null(),
        collnetEnable: UNDEF,
        CTAPolicy: UNDEF,
        shrinkShare: UNDEF,
        nvlsCTAs: UNDEF,
        nChannelsPerNetPeer: UNDEF,
        nvlinkCentricSched: UNDEF,
        graphUsageMode: UNDEF,
        numRmaCtx: UNDEF,
        maxP2pPeers: UNDEF,
    }
}

/// ncclCommGetAsyncError: ncclInProgress while a non-blocking init or call is under way,
/// ncclSuccess, or the communicator's asynchronous error (a failed peer, a network error).
///
/// # Safety
/// A live communicator.
pub unsafe fn comm_get_async_error(comm: ncclComm_t) -> Result<ncclResult_t> {
    route!(
        real => {
            let mut state = ncclResult_t::ncclSuccess;
            match sys::ncclCommGetAsyncError(comm, &mut state) {
                ncclResult_t::ncclSuccess => Ok(state),
                r => Err(NcclError::new(r, "")),
            }
        },
        emu => crate::cuda::emu::nccl::comm_get_async_error(comm),
    )
}

/// What the emulated library knows of a communicator's fault or wait (the ranks it waits for);
/// empty on a GPU, where NCCL does not say.
///
/// # Safety
/// A communicator, live or aborted.
pub unsafe fn fault_detail(_comm: ncclComm_t) -> String {
    route!(
        real => String::new(),
        emu => crate::cuda::emu::nccl::fault_detail(_comm),
    )
}

/// # Safety
/// `comms` has room for `ndev` communicators; `devlist` holds `ndev` device ordinals.
pub unsafe fn comm_init_all(
    comms: *mut ncclComm_t,
    ndev: c_int,
    devlist: *const c_int,
) -> Result<()> {
    route!(
        real => real(result::comm_init_all(comms, ndev, devlist)),
        emu => crate::cuda::emu::nccl::comm_init_all(comms, ndev, devlist),
    )
}

/// # Safety
/// A communicator not used after this call.
pub unsafe fn comm_abort(comm: ncclComm_t) -> Result<()> {
    route!(
        real => real(result::comm_abort(comm)),
        emu => crate::cuda::emu::nccl::comm_abort(comm),
    )
}

/// # Safety
/// Device buffers of `count` elements of `dtype` on the communicator's GPU.
#[allow(clippy::too_many_arguments)]
pub unsafe fn all_reduce(
    send: *const c_void,
    recv: *mut c_void,
    count: usize,
    dtype: ncclDataType_t,
    op: ncclRedOp_t,
    comm: ncclComm_t,
    stream: super::cu::CUstream,
) -> Result<()> {
    bump(&c::LIBRARY_CALLS, 1);
    route!(
        real => real(result::all_reduce(send, recv, count, dtype, op, comm, stream as sys::cudaStream_t)),
        emu => crate::cuda::emu::nccl::all_reduce(send, recv, count, dtype, op, comm, stream),
    )
}

/// # Safety
/// `send` holds `count` elements and `recv` `count · nranks` of `dtype`, on the comm's GPU.
pub unsafe fn all_gather(
    send: *const c_void,
    recv: *mut c_void,
    count: usize,
    dtype: ncclDataType_t,
    comm: ncclComm_t,
    stream: super::cu::CUstream,
) -> Result<()> {
    bump(&c::LIBRARY_CALLS, 1);
    route!(
        real => real(result::all_gather(send, recv, count, dtype, comm, stream as sys::cudaStream_t)),
        emu => crate::cuda::emu::nccl::all_gather(send, recv, count, dtype, comm, stream),
    )
}

/// # Safety
/// Device buffers of `count` elements of `dtype` on the communicator's GPU.
pub unsafe fn broadcast(
    send: *const c_void,
    recv: *mut c_void,
    count: usize,
    dtype: ncclDataType_t,
    root: c_int,
    comm: ncclComm_t,
    stream: super::cu::CUstream,
) -> Result<()> {
    bump(&c::LIBRARY_CALLS, 1);
    route!(
        real => real(result::broadcast(send, recv, count, dtype, root, comm, stream as sys::cudaStream_t)),
        emu => crate::cuda::emu::nccl::broadcast(send, recv, count, dtype, root, comm, stream),
    )
}

pub fn group_start() -> Result<()> {
    route!(
        real => real(result::group_start()),
        emu => crate::cuda::emu::nccl::group_start(),
    )
}

pub fn group_end() -> Result<()> {
    route!(
        real => real(result::group_end()),
        emu => crate::cuda::emu::nccl::group_end(),
    )
}
