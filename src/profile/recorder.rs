//! The per-thread recorder behind a [`Session`]: a clock, an optional device synchronisation
//! run at every range boundary, and the ranges seen so far.

use crate::{Device, Error, Result};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::time::Instant;

use super::Phase;

/// What a range covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    /// A kernel or raw op.
    Op(&'static str),
    /// The backward of a tape node of op `op`; `layer` indexes [`Profile::layers`].
    Backward {
        op: &'static str,
        layer: Option<u32>,
    },
    /// A module forward; indexes [`Profile::layers`].
    Layer(u32),
    Phase(Phase),
}

impl What {
    pub fn is_op(&self) -> bool {
        matches!(self, What::Op(_) | What::Backward { .. })
    }
}

/// One closed range. Times are nanoseconds since the session started; `parent` is the index of
/// the innermost range that was open when this one opened (always a smaller index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub what: What,
    pub start: u64,
    pub end: u64,
    pub parent: Option<usize>,
}

impl Event {
    pub fn duration(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
}

/// What a session recorded.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    pub events: Vec<Event>,
    /// Layer paths, indexed by [`What::Layer`] and `What::Backward::layer`.
    pub layers: Vec<String>,
    /// Nanoseconds from the session's start to its finish.
    pub total: u64,
    /// Whether the device was synchronised at every range boundary (CUDA).
    pub synchronised: bool,
}

/// A layer as the tape remembers it between a node's forward and its backward; meaningful only
/// within the session that issued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerTag {
    session: u32,
    layer: u32,
}

pub type Clock = Box<dyn FnMut() -> u64>;
pub type SyncFn = Box<dyn FnMut() -> Result<()>>;

pub(crate) struct Recorder {
    session: u32,
    clock: Clock,
    sync: Option<SyncFn>,
    sync_error: Option<Error>,
    t0: u64,
    events: Vec<Event>,
    open: Vec<usize>,
    layers: Vec<String>,
    layer_ids: HashMap<String, u32>,
}

impl Recorder {
    /// Waits for the device (so that the clock reads the end of the work queued so far), then
    /// reads the clock.
    fn now(&mut self) -> u64 {
        if let Some(sync) = &mut self.sync {
            if let Err(e) = sync() {
                self.sync_error.get_or_insert(e);
            }
        }
        (self.clock)().saturating_sub(self.t0)
    }

    pub(crate) fn intern(&mut self, path: &str) -> u32 {
        if let Some(&id) = self.layer_ids.get(path) {
            return id;
        }
        let id = self.layers.len() as u32;
        self.layers.push(path.to_string());
        self.layer_ids.insert(path.to_string(), id);
        id
    }

    pub(crate) fn layer_of(&self, tag: LayerTag) -> Option<u32> {
        (tag.session == self.session).then_some(tag.layer)
    }
}

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static RECORDER: RefCell<Option<Recorder>> = const { RefCell::new(None) };
    static NEXT_SESSION: Cell<u32> = const { Cell::new(1) };
}

#[inline]
pub(crate) fn active() -> bool {
    ACTIVE.with(|a| a.get())
}

/// Where an open range's event lives.
pub(crate) struct Slot {
    session: u32,
    event: usize,
}

#[inline]
pub(crate) fn open_if_active(what: impl FnOnce(&mut Recorder) -> What) -> Option<Slot> {
    if !active() {
        return None;
    }
    RECORDER.with_borrow_mut(|r| {
        let r = r.as_mut()?;
        let what = what(r);
        let start = r.now();
        let event = r.events.len();
        r.events.push(Event {
            what,
            start,
            end: start,
            parent: r.open.last().copied(),
        });
        r.open.push(event);
        Some(Slot {
            session: r.session,
            event,
        })
    })
}

/// Ends a range; a range opened in an earlier session (or after its finish) is ignored.
pub(crate) fn close(slot: Slot) {
    RECORDER.with_borrow_mut(|r| {
        let Some(r) = r.as_mut().filter(|r| r.session == slot.session) else {
            return;
        };
        let end = r.now();
        r.events[slot.event].end = end;
        // Guards drop in reverse order of creation, so this is almost always the last entry.
        if let Some(pos) = r.open.iter().rposition(|&e| e == slot.event) {
            r.open.remove(pos);
        }
    })
}

pub(crate) fn current_layer() -> Option<LayerTag> {
    RECORDER.with_borrow(|r| {
        let r = r.as_ref()?;
        r.open.iter().rev().find_map(|&e| match r.events[e].what {
            What::Layer(layer) => Some(LayerTag {
                session: r.session,
                layer,
            }),
            _ => None,
        })
    })
}

/// Records every range opened on this thread until [`Session::finish`]. One session at a time
/// per thread; dropping it unfinished discards what it recorded.
pub struct Session {
    id: u32,
    _thread: PhantomData<*const ()>,
}

impl Session {
    /// Wall-clock timing; on a CUDA device every range boundary first waits for the device, so
    /// each range is charged the work it queued (the step runs slower than unprofiled: kernels no
    /// longer overlap the host's launches, and each boundary costs a round trip to the device).
    pub fn start(device: Device) -> Result<Session> {
        let origin = Instant::now();
        let clock: Clock = Box::new(move || origin.elapsed().as_nanos() as u64);
        Session::start_with(clock, device_sync(device)?)
    }

    /// A session on any clock (nanoseconds) and synchronisation; tests use a fake clock.
    pub fn start_with(mut clock: Clock, sync: Option<SyncFn>) -> Result<Session> {
        if active() {
            return Err(Error::Config(
                "a profiling session is already running on this thread".into(),
            ));
        }
        let id = NEXT_SESSION.with(|n| {
            let id = n.get();
            n.set(id.wrapping_add(1).max(1));
            id
        });
        let t0 = clock();
        RECORDER.with_borrow_mut(|r| {
            *r = Some(Recorder {
                session: id,
                clock,
                sync,
                sync_error: None,
                t0,
                events: Vec::new(),
                open: Vec::new(),
                layers: Vec::new(),
                layer_ids: HashMap::new(),
            })
        });
        ACTIVE.with(|a| a.set(true));
        Ok(Session {
            id,
            _thread: PhantomData,
        })
    }

    /// Stops recording. Ranges still open end now. Fails if a device synchronisation failed.
    pub fn finish(self) -> Result<Profile> {
        let mut r = self.take().ok_or_else(|| {
            Error::Config("the profiling session was replaced before it finished".into())
        })?;
        let total = r.now();
        for &e in &r.open {
            r.events[e].end = total;
        }
        if let Some(e) = r.sync_error {
            return Err(e);
        }
        Ok(Profile {
            events: r.events,
            layers: r.layers,
            total,
            synchronised: r.sync.is_some(),
        })
    }

    fn take(&self) -> Option<Recorder> {
        RECORDER.with_borrow_mut(|slot| {
            if slot.as_ref().is_some_and(|r| r.session == self.id) {
                ACTIVE.with(|a| a.set(false));
                slot.take()
            } else {
                None
            }
        })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.take();
    }
}

/// The synchronisation a session on `device` needs: none on the CPU (every op has finished when
/// it returns), a stream synchronisation on a GPU.
fn device_sync(device: Device) -> Result<Option<SyncFn>> {
    match device {
        Device::Cpu => Ok(None),
        #[cfg(feature = "cuda")]
        Device::Cuda(i) => {
            let gpu = crate::cuda::gpu(i)?;
            Ok(Some(Box::new(move || gpu.synchronize())))
        }
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => Err(Error::device("profile", crate::cuda_unavailable_reason())),
    }
}
