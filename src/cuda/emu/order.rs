//! Stream order on the emulated device (emu/README.md "Stream order"). Work runs when it is
//! enqueued, so the emulator always sees program order; a GPU orders only the work of one
//! stream, and the work of two streams only through events (or the host waiting in between).
//! Each stream keeps a vector clock (per stream, the last of its operations it is ordered
//! after); an event carries the clock of its stream at the record; `cuStreamWaitEvent` joins
//! it into the waiting stream's clock; a host wait joins it into the host's, which every later
//! operation starts from. An operation hands its clock to the runtime (emu/memory.cpp), which
//! checks every access against the last write and read of the same 256-byte granule.

use super::ffi;
use crate::cuda::driver::cu::CUstream;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, CStr};
use std::sync::{Mutex, MutexGuard};

/// What the runtime reads (emu.h `EmuStreamOp`).
#[repr(C)]
pub struct StreamOp {
    stream: u32,
    clock: u64,
    vc: *const u64,
    nvc: u32,
    what: *const c_char,
}

#[derive(Default)]
struct Clocks {
    /// (stream handle, device for the per-device null stream) -> stream id (from 1).
    ids: HashMap<(usize, usize), u32>,
    /// The vector clock of each stream id (index 0 unused).
    vc: Vec<Vec<u64>>,
    /// What the host has waited for.
    host: Vec<u64>,
}

static CLOCKS: Mutex<Option<Clocks>> = Mutex::new(None);

fn clocks() -> MutexGuard<'static, Option<Clocks>> {
    CLOCKS.lock().unwrap_or_else(|p| p.into_inner())
}

fn join(a: &mut Vec<u64>, b: &[u64]) {
    if a.len() < b.len() {
        a.resize(b.len(), 0);
    }
    for (x, y) in a.iter_mut().zip(b) {
        *x = (*x).max(*y);
    }
}

impl Clocks {
    /// The id of `stream`; the null (legacy default) stream is one per device, `null_device`'s.
    fn id_on(&mut self, stream: CUstream, null_device: usize) -> usize {
        let device = if stream.is_null() {
            null_device
        } else {
            usize::MAX
        };
        if self.vc.is_empty() {
            self.vc.push(Vec::new());
        }
        let next = self.vc.len();
        let id = *self
            .ids
            .entry((stream as usize, device))
            .or_insert(next as u32) as usize;
        if id == next {
            self.vc.push(Vec::new());
        }
        id
    }

    /// The id of `stream`, the null stream being the current device's.
    fn id(&mut self, stream: CUstream) -> usize {
        self.id_on(stream, super::memory::current_device())
    }
}

/// The vector clock of `stream` now (what an event recorded there carries).
pub fn snapshot(stream: CUstream) -> Vec<u64> {
    let mut g = clocks();
    let c = g.get_or_insert_with(Clocks::default);
    let id = c.id(stream);
    c.vc[id].clone()
}

/// `stream` waits for what `clock` covers (cuStreamWaitEvent).
pub fn wait(stream: CUstream, clock: &[u64]) {
    let mut g = clocks();
    let c = g.get_or_insert_with(Clocks::default);
    let id = c.id(stream);
    join(&mut c.vc[id], clock);
}

/// The host waited for what `clock` covers (cuEventSynchronize, or a query that found it done).
/// The copies to and from pinned memory it now covers are done (`super::pinned`): an error
/// when the host changed an upload's memory before this wait.
pub fn host_waited(clock: &[u64]) -> crate::cuda::driver::cu::Result<()> {
    {
        let mut g = clocks();
        join(&mut g.get_or_insert_with(Clocks::default).host, clock);
    }
    super::pinned::settle()
}

/// One operation: its stream's id and its tick on that stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpId {
    stream: u32,
    tick: u64,
}

impl std::fmt::Display for OpId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "operation {} of stream {}", self.tick, self.stream)
    }
}

/// The operation running on this thread, if any.
pub fn current_op() -> Option<OpId> {
    ACTIVE.with(|a| {
        a.borrow().as_ref().map(|b| OpId {
            stream: b.op.stream,
            tick: b.op.clock,
        })
    })
}

/// Whether the operation running on this thread is ordered after `op` (its clock had reached
/// `op` when it started): whatever the host waits for that covers it then covers `op` too.
pub fn current_op_follows(op: OpId) -> bool {
    ACTIVE.with(|a| {
        a.borrow()
            .as_ref()
            .is_some_and(|b| b.vc.get(op.stream as usize).is_some_and(|&t| t >= op.tick))
    })
}

/// Whether the host has waited for operation `op` (or a later one of its stream).
pub fn host_waited_for(op: OpId) -> bool {
    let mut g = clocks();
    let c = g.get_or_insert_with(Clocks::default);
    c.host
        .get(op.stream as usize)
        .is_some_and(|&t| t >= op.tick)
}

struct Active {
    op: StreamOp,
    /// The operation's vector clock (`op.vc` points into it).
    vc: Vec<u64>,
    /// The stream's handle (a capture records the work of its streams: `super::graph`).
    handle: usize,
}

thread_local! {
    static ACTIVE: RefCell<Option<Box<Active>>> = const { RefCell::new(None) };
}

/// The operation running on this thread; ends (and stops the checks) when dropped.
pub struct OpGuard {
    owner: bool,
}

impl Drop for OpGuard {
    fn drop(&mut self) {
        if self.owner {
            // SAFETY: clears the runtime's pointer before the operation it points at goes.
            unsafe { ffi::emu_op_set(std::ptr::null()) };
            ACTIVE.with(|a| a.borrow_mut().take());
        }
    }
}

/// Starts an operation of `stream` (`what` names it in messages): its clock is the stream's
/// after the host's waits, plus one of its own. Inside another operation (a library call made
/// by an op, a graph's node) it is part of that one.
pub fn op(stream: CUstream, what: &'static CStr) -> OpGuard {
    op_on(stream, super::memory::current_device(), what)
}

/// [`op`] for a call whose null stream is `device`'s whatever the thread's current device (an
/// NCCL call: its communicator's device).
pub fn op_on(stream: CUstream, device: usize, what: &'static CStr) -> OpGuard {
    if ACTIVE.with(|a| a.borrow().is_some()) {
        return OpGuard { owner: false };
    }
    let (id, vc) = {
        let mut g = clocks();
        let c = g.get_or_insert_with(Clocks::default);
        let id = c.id_on(stream, device);
        let v = &mut c.vc[id];
        join(v, &c.host);
        if v.len() <= id {
            v.resize(id + 1, 0);
        }
        v[id] += 1;
        (id, v.clone())
    };
    // Moving the Vec into the box leaves its buffer where `vc.as_ptr()` points.
    let active = Box::new(Active {
        op: StreamOp {
            stream: id as u32,
            clock: vc[id],
            vc: vc.as_ptr(),
            nvc: vc.len() as u32,
            what: what.as_ptr(),
        },
        vc,
        handle: stream as usize,
    });
    // SAFETY: the runtime keeps the pointer until the guard clears it; the box does not move.
    unsafe { ffi::emu_op_set(&active.op) };
    ACTIVE.with(|a| *a.borrow_mut() = Some(active));
    OpGuard { owner: true }
}

/// The stream of the operation running on this thread, if any.
pub fn current_stream() -> Option<CUstream> {
    ACTIVE.with(|a| a.borrow().as_ref().map(|b| b.handle as CUstream))
}

/// Whether `a` is ordered after every operation enqueued so far on `b`.
pub fn covers(a: CUstream, b: CUstream) -> bool {
    let mut g = clocks();
    let c = g.get_or_insert_with(Clocks::default);
    let (ia, ib) = (c.id(a), c.id(b));
    let last = c.vc[ib].get(ib).copied().unwrap_or(0);
    c.vc[ia].get(ib).copied().unwrap_or(0) >= last
}

/// The current operation allocated `[ptr, ptr + bytes)` in stream order (cuMemAllocAsync):
/// another stream may use it only once ordered after this operation, as CUDA documents.
pub fn allocated(ptr: u64, bytes: usize) {
    // SAFETY: stamps the range's granules; the runtime checks nothing else.
    unsafe { ffi::emu_op_allocated(ptr, bytes as u64) };
}

/// Runs `f` outside any operation (accesses not order-checked): an emulated collective moving
/// every rank's data at once, whose ranks checked their own buffers under their own streams.
pub fn untracked<T>(f: impl FnOnce() -> T) -> T {
    let op = ACTIVE.with(|a| a.borrow().as_ref().map(|b| &b.op as *const StreamOp));
    // SAFETY: the pointer is this thread's active operation, restored before it can end.
    unsafe { ffi::emu_op_set(std::ptr::null()) };
    let r = f();
    if let Some(p) = op {
        unsafe { ffi::emu_op_set(p) };
    }
    r
}
