//! Profiling aids: named ranges around every module forward (its path,
//! `encoder.layer1.0.conv1`), every kernel dispatch (`conv2d`, from the `on_backend!` macro), every
//! backward node of the tape (`conv2d backward`) and the phases of a step (`backward`,
//! `optimizer`).
//!
//! Two consumers see the ranges:
//! - NVTX, in builds with the `cuda` feature: each range is pushed and popped on the thread's NVTX
//!   stack, so an Nsight Systems timeline (`nsys profile -t cuda,nvtx`) reads as the model. With
//!   no profiler attached, a push or a pop is one call that returns at once.
//! - A [`Session`] on this thread records them with their times; [`Table`] turns that into the
//!   per-op, per-layer and per-phase table `--profile` prints.
//!
//! With no session running, a range costs one branch on a thread-local flag (plus the NVTX
//! push/pop in CUDA builds).

mod nvtx;
mod recorder;
mod step;
pub mod table;
#[cfg(test)]
mod tests;

pub use recorder::{Event, LayerTag, Profile, Session, What};
pub use step::{arm, optimizer_step, StepRange};
pub use table::Table;

use std::marker::PhantomData;

/// The phases a step's time is split into. `Forward` is implicit: time in a layer or op range
/// outside any phase range. `Other` is the rest of the step (data loading, logging).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    Forward,
    Backward,
    Optimizer,
    Other,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Forward,
        Phase::Backward,
        Phase::Optimizer,
        Phase::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Forward => "forward",
            Phase::Backward => "backward",
            Phase::Optimizer => "optimizer",
            Phase::Other => "other",
        }
    }
}

/// A range that ends when dropped. Ranges are per thread (NVTX keeps one stack per thread), so
/// the guard cannot move to another one.
#[must_use = "a range ends when its guard is dropped"]
pub struct Range {
    slot: Option<recorder::Slot>,
    _thread: PhantomData<*const ()>,
}

impl Range {
    fn new(slot: Option<recorder::Slot>) -> Self {
        Range {
            slot,
            _thread: PhantomData,
        }
    }
}

impl Drop for Range {
    fn drop(&mut self) {
        if let Some(s) = self.slot.take() {
            recorder::close(s);
        }
        nvtx::pop();
    }
}

/// A kernel or raw op (the name its `on_backend!` carries).
#[inline]
pub fn op(name: &'static str) -> Range {
    nvtx::push(name, "");
    Range::new(recorder::open_if_active(|_| What::Op(name)))
}

/// A module's forward, named by its path.
#[inline]
pub fn layer(path: &str) -> Range {
    nvtx::push(path, "");
    Range::new(recorder::open_if_active(|r| What::Layer(r.intern(path))))
}

/// The backward of one tape node, charged to the layer that recorded it (see [`current_layer`]).
#[inline]
pub fn backward(op: &'static str, layer: Option<LayerTag>) -> Range {
    nvtx::push(op, " backward");
    Range::new(recorder::open_if_active(|r| What::Backward {
        op,
        layer: layer.and_then(|t| r.layer_of(t)),
    }))
}

/// A phase of the step (`Backward` from the tape, `Optimizer` from the optimizers).
#[inline]
pub fn phase(p: Phase) -> Range {
    nvtx::push(p.name(), "");
    Range::new(recorder::open_if_active(|_| What::Phase(p)))
}

/// The innermost layer open on this thread, when a session is recording: what the tape stores
/// with each node, so that its backward is charged to that layer.
#[inline]
pub fn current_layer() -> Option<LayerTag> {
    if !recorder::active() {
        return None;
    }
    recorder::current_layer()
}
