//! Emulated NCCL. (Skeleton: filled in by the emulated libraries.)

#![allow(clippy::too_many_arguments)]

use crate::cuda::driver::cu::CUstream;
use crate::cuda::driver::nccl::*;
use std::ffi::{c_int, c_void};

fn todo(what: &str) -> NcclError {
    NcclError::new(
        ncclResult_t::ncclInvalidUsage,
        format!("{what} is not emulated yet"),
    )
}

pub fn get_unique_id() -> Result<ncclUniqueId> {
    Err(todo("ncclGetUniqueId"))
}
/// # Safety
/// As ncclCommInitRank.
pub unsafe fn comm_init_rank(
    _comm: *mut ncclComm_t,
    _nranks: c_int,
    _id: ncclUniqueId,
    _rank: c_int,
) -> Result<()> {
    Err(todo("ncclCommInitRank"))
}
/// # Safety
/// As ncclCommInitAll.
pub unsafe fn comm_init_all(
    _comms: *mut ncclComm_t,
    _ndev: c_int,
    _devlist: *const c_int,
) -> Result<()> {
    Err(todo("ncclCommInitAll"))
}
/// # Safety
/// As ncclCommAbort.
pub unsafe fn comm_abort(_comm: ncclComm_t) -> Result<()> {
    Err(todo("ncclCommAbort"))
}
/// # Safety
/// As ncclAllReduce.
pub unsafe fn all_reduce(
    _send: *const c_void,
    _recv: *mut c_void,
    _count: usize,
    _dtype: ncclDataType_t,
    _op: ncclRedOp_t,
    _comm: ncclComm_t,
    _stream: CUstream,
) -> Result<()> {
    Err(todo("ncclAllReduce"))
}
/// # Safety
/// As ncclAllGather.
pub unsafe fn all_gather(
    _send: *const c_void,
    _recv: *mut c_void,
    _count: usize,
    _dtype: ncclDataType_t,
    _comm: ncclComm_t,
    _stream: CUstream,
) -> Result<()> {
    Err(todo("ncclAllGather"))
}
/// # Safety
/// As ncclBroadcast.
pub unsafe fn broadcast(
    _send: *const c_void,
    _recv: *mut c_void,
    _count: usize,
    _dtype: ncclDataType_t,
    _root: c_int,
    _comm: ncclComm_t,
    _stream: CUstream,
) -> Result<()> {
    Err(todo("ncclBroadcast"))
}
pub fn group_start() -> Result<()> {
    Err(todo("ncclGroupStart"))
}
pub fn group_end() -> Result<()> {
    Err(todo("ncclGroupEnd"))
}
