//! One NCCL communicator per GPU (feature `cuda`): one process or one thread per GPU, every
//! collective enqueued on the device's stream (so it is ordered with the kernels around it).
//! f32 and bf16 tensors. libnccl is loaded at run time: a CUDA build starts without it, and
//! only making a communicator says that it is missing.
//!
//! Set up: rank 0 makes an [`NcclId`] and hands it (its bytes, for other processes) to every
//! rank; each rank calls [`Nccl::new`] on its own thread with its GPU, rank and the world size
//! (the call returns once all ranks have joined). From one thread, [`Nccl::group`] makes the
//! communicators of several GPUs at once.
//!
//! Sums are NCCL's (deterministic for a fixed topology, but not in rank order). The bucketed
//! all-reduce ([`Communicator::all_reduce_sum_start`]) runs on a side stream of the
//! communicator, ordered with the device's stream by events (`nccl_stream`), so it overlaps
//! the backward still running; every other collective runs on the device's stream.
//!
//! **Faults** (a rank that died or hangs). [`Nccl::new`] makes a non-blocking communicator
//! (ncclCommInitRankConfig, blocking = 0) and polls ncclCommGetAsyncError until the init is
//! done; every collective is likewise polled after it is issued until NCCL says it is no longer
//! in progress. Both polls keep a deadline (`timeout`, the trainer's `--dist-timeout-s`): on an
//! asynchronous error or at the deadline the communicator is aborted (ncclCommAbort) and the
//! call returns an error naming this rank, the world size, the collective and the timeout
//! ([`fault_message`]); every later call returns the same error.
//!
//! Where the watch sits, and why there. Nothing here synchronises the stream or adds a host
//! wait, so the step counts of tests/cuda_step_counts.rs and tests/cuda_sync_bn_counts.rs stay
//! as they were:
//! - the poll runs on the calling thread right after the collective is issued, where the host
//!   already waits for NCCL to take the call: on a GPU ncclCommGetAsyncError says ncclSuccess
//!   once the collective is enqueued (one cheap query per collective). On the emulated device,
//!   whose streams are synchronous, a collective is in progress until every rank called it, so
//!   this poll is the whole wait and ends a hung peer's collective at the deadline;
//! - on a GPU the enqueued kernel then waits on the device for its peers; a watchdog thread per
//!   communicator (`nccl_watch`) asks, without waiting, whether the device has passed an event
//!   recorded after each collective, aborts the communicator when the oldest is older than the
//!   timeout or NCCL reports an asynchronous error, and so frees a host stuck waiting for the
//!   device; the next call returns the error.
//!
//! The communicators of [`Nccl::group`] are non-blocking too (made from one thread inside one
//! NCCL group): the same poll and watchdog, with the default timeout unless
//! [`Nccl::group_with_timeout`].

use super::nccl_stream::{order, OnSide, SideStream};
use super::nccl_watch::{Watched, Watcher};
use super::{Communicator, PendingSum};
use crate::cuda::driver::cu as dr;
use crate::cuda::driver::event as ev;
use crate::cuda::driver::nccl as ns;
use crate::cuda::driver::nccl::{self as nr, NcclError};
use crate::cuda::{gpu, CudaStorage, Gpu};
use crate::{DType, Device, Error, Result, Tensor};
use std::ffi::c_void;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const OP: &str = "nccl";

/// Errors of NCCL calls name the call and NCCL's own description.
fn nccl_err(call: &'static str) -> impl Fn(NcclError) -> Error {
    move |e: NcclError| {
        let what = nr::error_string(e.result);
        if e.detail.is_empty() {
            Error::Cuda(format!("{call}: {what}"))
        } else {
            Error::Cuda(format!("{call}: {what}: {}", e.detail))
        }
    }
}

fn driver_err(call: &'static str) -> impl Fn(dr::DriverError) -> Error {
    move |e| Error::Cuda(format!("{call}: {e:?}"))
}

/// Whether libnccl can be loaded; the error says how to get it.
fn library() -> Result<()> {
    if nr::is_present() {
        Ok(())
    } else {
        Err(Error::Cuda(
            "NCCL is not available: could not load libnccl.so (install NCCL 2.x, e.g. the \
             nvidia-nccl wheel of a PyTorch install, and put its lib folder on LD_LIBRARY_PATH)"
                .into(),
        ))
    }
}

/// Runs `f`, turning a panic of the bindings (a symbol missing from an old libnccl) into an
/// error.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    library()?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(Error::Cuda(format!(
            "{what}: the NCCL bindings panicked (libnccl too old for NCCL 2.30 symbols?)"
        )))
    })
}

/// The identity of one group, made by rank 0 and shared with every rank.
#[derive(Clone, Copy)]
pub struct NcclId(ns::ncclUniqueId);

impl NcclId {
    pub fn new() -> Result<Self> {
        guarded("ncclGetUniqueId", || {
            Ok(NcclId(
                nr::get_unique_id().map_err(nccl_err("ncclGetUniqueId"))?,
            ))
        })
    }

    /// The 128 bytes to send to the ranks of other processes.
    pub fn to_bytes(&self) -> [u8; 128] {
        self.0.internal.map(|c| c as u8)
    }

    pub fn from_bytes(bytes: [u8; 128]) -> Self {
        NcclId(ns::ncclUniqueId {
            internal: bytes.map(|b| b as std::ffi::c_char),
        })
    }
}

/// The timeout of communicators made without one (the trainer's `--dist-timeout-s` default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The error of a collective (`what`, e.g. "all_reduce_sum of 21 tensors") that failed on
/// `rank` of `world`: with `failure` NCCL's asynchronous error, without it the deadline of
/// `timeout` passed. `detail` is what the emulated library knows (the ranks it waits for);
/// empty on a GPU.
pub fn fault_message(
    rank: usize,
    world: usize,
    what: &str,
    timeout: Duration,
    failure: Option<&str>,
    detail: &str,
) -> String {
    let why = match failure {
        Some(f) => format!("failed: {f}"),
        None => format!(
            "did not complete within {:.1} s (--dist-timeout-s): a rank died or hangs, or the \
             ranks called different collectives",
            timeout.as_secs_f64()
        ),
    };
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    };
    format!(
        "NCCL rank {rank} of {world}: {what} {why}; the communicator was aborted{detail} \
         (timeout {:.1} s)",
        timeout.as_secs_f64()
    )
}

/// A raw communicator; NCCL allows its use from any thread, one call at a time (the mutex).
/// After a fault it is aborted and `failed` holds the error every later call returns.
struct Handle {
    comm: ns::ncclComm_t,
    failed: Option<String>,
}
unsafe impl Send for Handle {}

/// Aborts `h` after a fault of collective `what` and keeps the error for every later call.
fn trip(h: &mut Handle, at: (usize, usize, Duration), what: &str, failure: Option<&str>) -> String {
    let (rank, world, timeout) = at;
    let detail = unsafe { nr::fault_detail(h.comm) };
    let msg = fault_message(rank, world, what, timeout, failure, &detail);
    // Abort: frees this rank without waiting for peers, and ends NCCL's kernels.
    let _ = unsafe { nr::comm_abort(h.comm) };
    h.failed = Some(msg.clone());
    msg
}

/// The communicator as its watchdog sees it.
struct Target {
    comm: Arc<Mutex<Handle>>,
    at: (usize, usize, Duration),
}

impl Watched for Target {
    fn async_error(&self) -> Option<String> {
        let h = self.comm.lock().ok()?;
        if h.failed.is_some() {
            return None;
        }
        match unsafe { nr::comm_get_async_error(h.comm) } {
            Ok(ns::ncclResult_t::ncclSuccess | ns::ncclResult_t::ncclInProgress) => None,
            Ok(code) => Some(nr::error_string(code)),
            Err(e) => Some(format!(
                "ncclCommGetAsyncError: {}",
                nr::error_string(e.result)
            )),
        }
    }

    fn fail(&self, what: &str, failure: Option<&str>) {
        let Ok(mut h) = self.comm.lock() else { return };
        if h.failed.is_none() {
            let what = format!("{what} (waited for on the device)");
            let msg = trip(&mut h, self.at, &what, failure);
            // The host may be inside a CUDA call that now returns a plainer error: say why.
            eprintln!("simclr: {msg}");
        }
    }
}

pub struct Nccl {
    comm: Arc<Mutex<Handle>>,
    rank: usize,
    world: usize,
    gpu: Arc<Gpu>,
    timeout: Duration,
    watcher: Option<Watcher>,
    /// The stream of the bucketed all-reduce (`nccl_stream`), made on its first use.
    side: OnceLock<SideStream>,
}

impl Drop for Nccl {
    fn drop(&mut self) {
        // The watchdog first: it must not abort a communicator being torn down.
        drop(self.watcher.take());
        if let Ok(h) = self.comm.lock() {
            if h.failed.is_none() {
                // Abort rather than destroy: does not wait for peers that may have failed.
                let _ = unsafe { nr::comm_abort(h.comm) };
            }
        }
    }
}

fn nccl_dtype(dtype: DType) -> Result<ns::ncclDataType_t> {
    match dtype {
        DType::F32 => Ok(ns::ncclDataType_t::ncclFloat32),
        DType::BF16 => Ok(ns::ncclDataType_t::ncclBfloat16),
        d => Err(Error::dtype(
            OP,
            format!("NCCL collectives take f32 or bf16, not {}", d.name()),
        )),
    }
}

impl Nccl {
    /// Joins group `id` as `rank` of `world`, on GPU `ordinal`. Blocks until every rank has
    /// joined, so each rank must call it from its own thread or process; fails when they have
    /// not all joined within `timeout`, which also bounds each later collective (module doc).
    pub fn new(
        ordinal: usize,
        rank: usize,
        world: usize,
        id: NcclId,
        timeout: Duration,
    ) -> Result<Self> {
        if rank >= world {
            return Err(Error::Config(format!(
                "NCCL rank {rank} in a world of {world}"
            )));
        }
        let gpu = gpu(ordinal)?;
        let comm = guarded("ncclCommInitRankConfig", || {
            let mut comm = std::ptr::null_mut();
            unsafe { nr::comm_init_rank_config(&mut comm, world as i32, id.0, rank as i32, false) }
                .map_err(nccl_err("ncclCommInitRankConfig"))?;
            Ok(comm)
        })?;
        let nccl = Self::wrap(comm, rank, world, gpu, timeout)?;
        let mut h = nccl.enter()?;
        nccl.settle(&mut h, || {
            "joining the communicator (ncclCommInitRankConfig)".into()
        })?;
        drop(h);
        Ok(nccl)
    }

    /// A communicator and its watchdog.
    fn wrap(
        comm: ns::ncclComm_t,
        rank: usize,
        world: usize,
        gpu: Arc<Gpu>,
        timeout: Duration,
    ) -> Result<Self> {
        let comm = Arc::new(Mutex::new(Handle { comm, failed: None }));
        let mut nccl = Nccl {
            comm: comm.clone(),
            rank,
            world,
            gpu,
            timeout,
            watcher: None,
            side: OnceLock::new(),
        };
        let target = Target {
            comm,
            at: (rank, world, timeout),
        };
        // Dropping `nccl` on an error aborts the communicator.
        nccl.watcher = Some(Watcher::spawn(nccl.gpu.ordinal, timeout, target)?);
        Ok(nccl)
    }

    /// The communicators of GPUs `ordinals` (rank i on `ordinals[i]`), made from one thread;
    /// hand each to the thread that drives its GPU. Collectives time out after
    /// [`DEFAULT_TIMEOUT`].
    pub fn group(ordinals: &[usize]) -> Result<Vec<Nccl>> {
        Self::group_with_timeout(ordinals, DEFAULT_TIMEOUT)
    }

    /// As [`Nccl::group`], each collective failing after `timeout`.
    ///
    /// One non-blocking communicator per GPU (ncclCommInitRankConfig, blocking = 0), made from
    /// this thread inside one ncclGroupStart/End (NCCL needs the group to make several ranks
    /// from one thread), each with its GPU current; then each joins under the deadline, as in
    /// [`Nccl::new`]. Blocking ones (ncclCommInitAll) would run each rank's first collective's
    /// connection setup inside the call, where a peer that failed before it leaves the call
    /// waiting for good, with the communicator's lock held and the watchdog shut out.
    pub fn group_with_timeout(ordinals: &[usize], timeout: Duration) -> Result<Vec<Nccl>> {
        let gpus: Vec<Arc<Gpu>> = ordinals.iter().map(|&o| gpu(o)).collect::<Result<_>>()?;
        if let Some((i, o)) = ordinals
            .iter()
            .enumerate()
            .find(|(i, o)| ordinals[..*i].contains(o))
        {
            return Err(Error::Config(format!(
                "NCCL ranks need one GPU each: cuda:{o} is given to ranks {} and {i}",
                ordinals.iter().position(|x| x == o).unwrap_or(0)
            )));
        }
        let world = ordinals.len();
        let id = NcclId::new()?;
        let mut comms = vec![std::ptr::null_mut(); world];
        let made = guarded("ncclCommInitRankConfig", || {
            nr::group_start().map_err(nccl_err("ncclGroupStart"))?;
            let mut status = Ok(());
            for (rank, g) in gpus.iter().enumerate() {
                // The rank's device is the current one when it is made.
                let r = g
                    .ctx
                    .bind_to_thread()
                    .map_err(driver_err("cuCtxSetCurrent"))
                    .and_then(|_| {
                        unsafe {
                            nr::comm_init_rank_config(
                                &mut comms[rank],
                                world as i32,
                                id.0,
                                rank as i32,
                                false,
                            )
                        }
                        .map_err(nccl_err("ncclCommInitRankConfig"))
                    });
                if r.is_err() {
                    status = r;
                    break;
                }
            }
            // The group must be closed even after a failed call.
            let end = nr::group_end().map_err(nccl_err("ncclGroupEnd"));
            status.and(end)
        });
        // Every communicator made is wrapped, so an error below aborts it (on drop).
        let group: Vec<Nccl> = comms
            .into_iter()
            .zip(gpus)
            .enumerate()
            .filter(|(_, (c, _))| !c.is_null())
            .map(|(rank, (c, gpu))| Self::wrap(c, rank, world, gpu, timeout))
            .collect::<Result<_>>()?;
        made?;
        for nccl in &group {
            let mut h = nccl.enter()?;
            nccl.settle(&mut h, || {
                "joining the communicator (ncclCommInitRankConfig, every GPU from one thread)"
                    .into()
            })?;
        }
        Ok(group)
    }

    fn stream(&self) -> dr::CUstream {
        self.gpu.cu_stream()
    }

    /// Binds this GPU to the calling thread and locks the communicator; the communicator's
    /// error once it was aborted after a fault.
    fn enter(&self) -> Result<std::sync::MutexGuard<'_, Handle>> {
        gpu(self.gpu.ordinal)?;
        let h = self
            .comm
            .lock()
            .map_err(|_| Error::Cuda("NCCL communicator poisoned by a panic".into()))?;
        match &h.failed {
            Some(e) => Err(Error::Cuda(e.clone())),
            None => Ok(h),
        }
    }

    /// [`Nccl::settle`], then a mark for the watchdog after the collective on the stream.
    fn issued(
        &self,
        h: &mut Handle,
        stream: dr::CUstream,
        what: impl Fn() -> String,
    ) -> Result<()> {
        self.settle(h, &what)?;
        match &self.watcher {
            Some(w) => w.mark(stream, what),
            None => Ok(()),
        }
    }

    /// The sums of `ts`, enqueued on `stream`: the device's, or the side stream, which first
    /// waits for the device's.
    fn all_reduce_on(&self, ts: &[Tensor], stream: dr::CUstream) -> Result<Vec<Tensor>> {
        let mut comm = self.enter()?;
        let mut outs = Vec::with_capacity(ts.len());
        let mut jobs = Vec::with_capacity(ts.len());
        for t in ts {
            let dt = nccl_dtype(t.dtype())?;
            let src = self.storage(t)?.ptr();
            let out = self.alloc(t.dtype(), t.shape())?;
            jobs.push((src, self.storage(&out)?.ptr(), t.numel(), dt));
            outs.push(out);
        }
        if stream != self.stream() {
            // The gradients and the new outputs are the device stream's so far.
            order(self.stream(), stream)?;
        }
        nr::group_start().map_err(nccl_err("ncclGroupStart"))?;
        let mut status = Ok(());
        for &(src, dst, n, dt) in jobs.iter().filter(|j| j.2 > 0) {
            let r = unsafe {
                nr::all_reduce(
                    src as *const c_void,
                    dst as *mut c_void,
                    n,
                    dt,
                    ns::ncclRedOp_t::ncclSum,
                    comm.comm,
                    stream,
                )
            };
            if let Err(e) = r {
                status = Err(nccl_err("ncclAllReduce")(e));
                break;
            }
        }
        // The group must be closed even after a failed call.
        let end = nr::group_end().map_err(nccl_err("ncclGroupEnd"));
        status?;
        end?;
        if jobs.iter().any(|j| j.2 > 0) {
            self.issued(&mut comm, stream, || {
                format!("all_reduce_sum of {} tensors", ts.len())
            })?;
        }
        Ok(outs)
    }

    /// The side stream, made on first use (with this GPU current: [`Nccl::enter`] binds it).
    fn side_stream(&self) -> Result<dr::CUstream> {
        if let Some(s) = self.side.get() {
            return Ok(s.handle());
        }
        let _bound = self.enter()?;
        let s = SideStream::new()?;
        Ok(self.side.get_or_init(|| s).handle())
    }

    /// Polls ncclCommGetAsyncError until the init or collective just issued (`what`) is no
    /// longer in progress; on an asynchronous error or past the deadline, aborts the
    /// communicator and fails with [`fault_message`]. Never synchronises the stream.
    fn settle(&self, h: &mut Handle, what: impl Fn() -> String) -> Result<()> {
        self.poll(h, what, |h| {
            match unsafe { nr::comm_get_async_error(h.comm) } {
                Ok(ns::ncclResult_t::ncclSuccess) => Ok(true),
                Ok(ns::ncclResult_t::ncclInProgress) => Ok(false),
                Ok(code) => Err(nr::error_string(code)),
                Err(e) => Err(format!(
                    "ncclCommGetAsyncError: {}",
                    nr::error_string(e.result)
                )),
            }
        })
    }

    /// Waits on the host, under the deadline, until the device has run what `stream` holds
    /// (the collective `what` last): the caller holds the communicator's lock, which keeps
    /// the watchdog out, so a peer that never calls must end this wait here, by an abort and
    /// [`fault_message`], and not in a stream synchronisation nothing could end.
    fn wait_device(
        &self,
        h: &mut Handle,
        stream: dr::CUstream,
        what: impl Fn() -> String,
    ) -> Result<()> {
        let done = ev::create().map_err(driver_err("cuEventCreate"))?;
        let waited = match unsafe { ev::record(done, stream) } {
            Ok(()) => self.poll(h, what, |_| {
                unsafe { ev::query(done) }.map_err(|e| format!("cuEventQuery: {e:?}"))
            }),
            Err(e) => Err(driver_err("cuEventRecord")(e)),
        };
        // The event is this call's alone; after an abort the device has let go of it.
        let _ = unsafe { ev::destroy(done) };
        waited
    }

    /// Asks `done` (with a growing pause, up to 5 ms) until it says yes; when it fails, or
    /// the deadline passes, aborts the communicator and fails with [`fault_message`].
    fn poll(
        &self,
        h: &mut Handle,
        what: impl Fn() -> String,
        mut done: impl FnMut(&Handle) -> std::result::Result<bool, String>,
    ) -> Result<()> {
        let start = Instant::now();
        let mut pause = Duration::from_micros(20);
        loop {
            let failure = match done(h) {
                Ok(true) => return Ok(()),
                Ok(false) => None,
                Err(why) => Some(why),
            };
            if failure.is_some() || start.elapsed() >= self.timeout {
                let at = (self.rank, self.world, self.timeout);
                return Err(Error::Cuda(trip(h, at, &what(), failure.as_deref())));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    /// The GPU storage of `t`, which must live on this rank's GPU.
    fn storage<'a>(&self, t: &'a Tensor) -> Result<&'a CudaStorage> {
        match CudaStorage::of(t.storage()) {
            Some(s) if t.device() == Device::Cuda(self.gpu.ordinal) => Ok(s),
            _ => Err(Error::device(
                OP,
                format!(
                    "rank {} communicates on cuda:{}, got a tensor on {}",
                    self.rank,
                    self.gpu.ordinal,
                    t.device()
                ),
            )),
        }
    }

    fn alloc(&self, dtype: DType, shape: &[usize]) -> Result<Tensor> {
        let s = CudaStorage::alloc(&self.gpu, dtype, shape.iter().product())?;
        Ok(Tensor::from_storage(s.into(), shape))
    }

    /// Enqueues `call(send, recv, count, dtype, comm, stream)` from `t` into a new tensor of
    /// `shape` (nothing to send for an empty `t`).
    fn one_to_new(
        &self,
        t: &Tensor,
        shape: &[usize],
        what: &'static str,
        call: impl FnOnce(
            *const c_void,
            *mut c_void,
            usize,
            ns::ncclDataType_t,
            ns::ncclComm_t,
            dr::CUstream,
        ) -> nr::Result<()>,
    ) -> Result<Tensor> {
        let mut comm = self.enter()?;
        let dt = nccl_dtype(t.dtype())?;
        let src = self.storage(t)?.ptr();
        let out = self.alloc(t.dtype(), shape)?;
        if t.numel() > 0 {
            let dst = self.storage(&out)?.ptr();
            call(
                src as *const c_void,
                dst as *mut c_void,
                t.numel(),
                dt,
                comm.comm,
                self.stream(),
            )
            .map_err(nccl_err(what))?;
            self.issued(&mut comm, self.stream(), || {
                format!("{what} of {:?}", t.shape())
            })?;
        }
        Ok(out)
    }

    /// All-gathers one u64 triple per rank (rows, elements per row, dtype) through the device.
    fn gather_headers(&self, h: &mut Handle, mine: [u64; 3]) -> Result<Vec<[u64; 3]>> {
        // f32 buffers of twice the length hold the u64s (NCCL sees raw bytes).
        let send = self.alloc(DType::F32, &[6])?;
        let recv = self.alloc(DType::F32, &[6 * self.world])?;
        let (sp, rp) = (self.storage(&send)?.ptr(), self.storage(&recv)?.ptr());
        let stream = self.gpu.cu_stream();
        unsafe { dr::memcpy_htod_async(sp, &mine, stream) }
            .map_err(driver_err("cuMemcpyHtoDAsync"))?;
        unsafe {
            nr::all_gather(
                sp as *const c_void,
                rp as *mut c_void,
                3,
                ns::ncclDataType_t::ncclUint64,
                h.comm,
                self.stream(),
            )
        }
        .map_err(nccl_err("ncclAllGather"))?;
        let what = || "all_gather of the ranks' row counts".to_string();
        self.issued(h, self.stream(), what)?;
        self.wait_device(h, stream, what)?;
        let mut all = vec![0u64; 3 * self.world];
        unsafe { dr::memcpy_dtoh_async(&mut all, rp, stream) }
            .map_err(driver_err("cuMemcpyDtoHAsync"))?;
        self.gpu.synchronize()?;
        Ok(all.chunks(3).map(|c| [c[0], c[1], c[2]]).collect())
    }
}

fn dtype_code(d: DType) -> u64 {
    match d {
        DType::F32 => 1,
        DType::BF16 => 2,
        _ => 0,
    }
}

impl Communicator for Nccl {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.world
    }

    fn all_reduce_sum(&self, ts: &[Tensor]) -> Result<Vec<Tensor>> {
        self.all_reduce_on(ts, self.stream())
    }

    /// On the communicator's side stream, ordered by events after the work enqueued so far on
    /// the device's stream; the sums' `wait` orders the device's stream after it
    /// (`nccl_stream`). While a CUDA graph is captured, on the device's stream.
    fn all_reduce_sum_start(&self, ts: Vec<Tensor>) -> Result<Box<dyn PendingSum + '_>> {
        if crate::cuda::driver::graph::capturing() {
            return Ok(Box::new(super::Ready(self.all_reduce_sum(&ts)?)));
        }
        let side = self.side_stream()?;
        let sums = self.all_reduce_on(&ts, side)?;
        Ok(Box::new(OnSide {
            sums,
            inputs: ts,
            side,
            compute: self.stream(),
            joined: false,
        }))
    }

    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        let mut comm = self.enter()?;
        let dt = nccl_dtype(t.dtype())?;
        let src = self.storage(t)?;
        let (rows, per) = match t.shape() {
            [n, rest @ ..] => (*n, rest.iter().product::<usize>()),
            [] => return Err(Error::shape(OP, "all_gather needs rows, got a scalar")),
        };
        let headers =
            self.gather_headers(&mut comm, [rows as u64, per as u64, dtype_code(t.dtype())])?;
        if let Some((r, h)) = headers
            .iter()
            .enumerate()
            .find(|(_, h)| h[1..] != headers[0][1..])
        {
            return Err(Error::shape(
                OP,
                format!(
                    "all_gather: rank {r} passes rows of {} elements (dtype code {}), rank 0 of {} ({})",
                    h[1], h[2], headers[0][1], headers[0][2]
                ),
            ));
        }
        let counts: Vec<usize> = headers.iter().map(|h| h[0] as usize).collect();
        let total: usize = counts.iter().sum();
        let most = counts.iter().copied().max().unwrap_or(0);
        let mut shape = t.shape().to_vec();
        shape[0] = total;
        let out = self.alloc(t.dtype(), &shape)?;
        if total * per == 0 {
            return Ok(out);
        }
        let bytes_per_row = per * t.dtype().size_in_bytes();
        let stream = self.gpu.cu_stream();
        let mut gather = |send: u64, recv: u64, rows_each: usize| {
            unsafe {
                nr::all_gather(
                    send as *const c_void,
                    recv as *mut c_void,
                    rows_each * per,
                    dt,
                    comm.comm,
                    self.stream(),
                )
            }
            .map_err(nccl_err("ncclAllGather"))?;
            self.issued(&mut comm, self.stream(), || {
                format!("all_gather of {rows_each} rows of {per} elements per rank")
            })
        };
        let dst = self.storage(&out)?.ptr();
        if counts.iter().all(|&c| c == most) {
            gather(src.ptr(), dst, most)?;
            return Ok(out);
        }
        // Uneven rows: pad every rank's rows to the most, gather, then close the gaps. The pad is
        // zeroed: NCCL reads all of it (the emulated device refuses reads of unwritten memory).
        let padded = Tensor::from_storage(
            CudaStorage::zeros(&self.gpu, t.dtype(), most * per)?.into(),
            &[most * per],
        );
        let pp = self.storage(&padded)?.ptr();
        if rows > 0 {
            unsafe { dr::memcpy_dtod_async(pp, src.ptr(), rows * bytes_per_row, stream) }
                .map_err(driver_err("cuMemcpyDtoDAsync"))?;
        }
        let all = self.alloc(t.dtype(), &[self.world * most * per])?;
        let ap = self.storage(&all)?.ptr();
        gather(pp, ap, most)?;
        let mut offset = 0u64;
        for (r, &c) in counts.iter().enumerate() {
            if c > 0 {
                let from = ap + (r * most * bytes_per_row) as u64;
                unsafe { dr::memcpy_dtod_async(dst + offset, from, c * bytes_per_row, stream) }
                    .map_err(driver_err("cuMemcpyDtoDAsync"))?;
            }
            offset += (c * bytes_per_row) as u64;
        }
        Ok(out)
    }

    fn all_gather_same(&self, t: &Tensor) -> Result<Tensor> {
        let mut shape = t.shape().to_vec();
        match shape.first_mut() {
            Some(n) => *n *= self.world,
            None => return Err(Error::shape(OP, "all_gather needs rows, got a scalar")),
        }
        self.one_to_new(
            t,
            &shape,
            "ncclAllGather",
            |src, dst, n, dt, comm, stream| unsafe {
                nr::all_gather(src, dst, n, dt, comm, stream)
            },
        )
    }

    fn broadcast(&self, t: &Tensor) -> Result<Tensor> {
        self.one_to_new(
            t,
            t.shape(),
            "ncclBroadcast",
            |src, dst, n, dt, comm, stream| unsafe {
                nr::broadcast(src, dst, n, dt, 0, comm, stream)
            },
        )
    }

    fn barrier(&self) -> Result<()> {
        let one = Tensor::zeros(&[1], DType::F32, Device::Cuda(self.gpu.ordinal))?;
        self.all_reduce_sum(&[one])?;
        self.gpu.synchronize()
    }
}
