//! The NCCL calls the backend makes: unique ids, communicators (one per rank, or all of one
//! process's GPUs at once), the collectives, groups and error strings.

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
