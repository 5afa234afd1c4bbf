//! The steady-state training step replayed as a CUDA graph (`--cuda-graph auto|on|off`).
//!
//! A step with fixed shapes that reads its batch from a fixed device buffer and updates the
//! model in place can be captured once and replayed: one launch per step, no host work. The
//! sequence: [`WARM_STEPS`] plain eager steps (cuDNN algorithm searches, the optimizer's device
//! table), [`FILL_STEPS`] eager steps with the graph pool active (it then holds every block the
//! step allocates), the capture (recorded, then launched: that is the step), then replays. With
//! `auto`, a step that cannot be captured (an allocation, wait or read-back inside it, or no
//! CUDA device) runs eagerly from then on, after a message saying why; with `on` that is an
//! error.
//!
//! A replay returns the captured step's result again: its device tensors are rewritten by
//! every replay, so read them before the next step.

#[cfg(feature = "cuda")]
pub use crate::cuda::graph::CudaGraph;
#[cfg(feature = "cuda")]
use crate::cuda::graph::GraphPool;
use crate::{Device, Error, Result};

/// Without the CUDA backend there is never a graph.
#[cfg(not(feature = "cuda"))]
pub enum CudaGraph {}
#[cfg(not(feature = "cuda"))]
enum GraphPool {}

/// Plain eager steps before the pool fills (first-step searches and tables).
pub const WARM_STEPS: usize = 1;
/// Eager steps with the graph pool active before the capture.
pub const FILL_STEPS: usize = 2;

/// `--cuda-graph`: whether the step is captured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum GraphMode {
    /// Captured when shapes are fixed and the capture succeeds; eager otherwise.
    #[default]
    Auto,
    On,
    Off,
}

impl GraphMode {
    pub fn name(self) -> &'static str {
        match self {
            GraphMode::Auto => "auto",
            GraphMode::On => "on",
            GraphMode::Off => "off",
        }
    }

    pub fn parse(flag: &str, s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(GraphMode::Auto),
            "on" => Ok(GraphMode::On),
            "off" => Ok(GraphMode::Off),
            other => Err(Error::Config(format!(
                "{flag} is {other:?}; allowed: auto, on, off"
            ))),
        }
    }
}

enum State<R> {
    Eager,
    // Never made without the CUDA backend (CudaGraph is then uninhabited).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    Graph(CudaGraph, R),
}

/// Runs a training step eagerly or as a replayed graph (see the module header).
pub struct GraphedStep<R> {
    mode: GraphMode,
    device: Device,
    steps: usize,
    pool: Option<std::sync::Arc<GraphPool>>,
    state: State<R>,
    /// Why the step runs eagerly under `auto` (said once).
    pub fallback: Option<String>,
}

impl<R: Clone> GraphedStep<R> {
    /// `mode` on `device`; `on` with a CPU device is an error, `auto` is eager there.
    pub fn new(mode: GraphMode, device: Device) -> Result<Self> {
        let mut g = GraphedStep {
            mode,
            device,
            steps: 0,
            pool: None,
            state: State::Eager,
            fallback: None,
        };
        if let (Device::Cpu, GraphMode::On) = (device, mode) {
            return Err(Error::Config(
                "--cuda-graph on needs a CUDA device (--device cuda or cuda-emu)".into(),
            ));
        }
        if device == Device::Cpu && mode == GraphMode::Auto {
            g.mode = GraphMode::Off;
        }
        Ok(g)
    }

    /// Back to eager steps, to capture again after the warm-up (the step's shapes changed, or
    /// an eager step replaced tensors the graph reads).
    pub fn reset(&mut self) {
        self.steps = 0;
        self.pool = None;
        self.state = State::Eager;
    }

    /// Whether the steps will be captured (a CUDA device and a mode other than off).
    pub fn enabled(&self) -> bool {
        self.mode != GraphMode::Off && matches!(self.device, Device::Cuda(_))
    }

    /// The warm-up steps a timed run needs: `requested`, or enough for the capture to have
    /// happened before timing starts (after its eager and pool-filling steps).
    pub fn warmup(&self, requested: usize) -> usize {
        if self.enabled() {
            requested.max(WARM_STEPS + FILL_STEPS + 1)
        } else {
            requested
        }
    }

    /// Whether the steps now replay a graph.
    pub fn replaying(&self) -> bool {
        matches!(self.state, State::Graph(..))
    }

    /// The captured graph, once there is one.
    pub fn graph(&self) -> Option<&CudaGraph> {
        match &self.state {
            State::Graph(g, _) => Some(g),
            State::Eager => None,
        }
    }

    /// One step: `step` runs it eagerly (or is captured); a replay does not call it.
    pub fn step(&mut self, step: &mut dyn FnMut() -> Result<R>) -> Result<R> {
        let i = self.steps;
        self.steps += 1;
        if let State::Graph(g, r) = &self.state {
            #[cfg(feature = "cuda")]
            g.launch()?;
            #[cfg(not(feature = "cuda"))]
            let _ = g;
            return Ok(r.clone());
        }
        let Device::Cuda(ordinal) = self.device else {
            return step();
        };
        if self.mode == GraphMode::Off || self.fallback.is_some() || i < WARM_STEPS {
            return step();
        }
        self.capture_step(ordinal, i, step)
    }

    #[cfg(not(feature = "cuda"))]
    fn capture_step(
        &mut self,
        _: usize,
        _: usize,
        step: &mut dyn FnMut() -> Result<R>,
    ) -> Result<R> {
        step()
    }

    #[cfg(feature = "cuda")]
    fn capture_step(
        &mut self,
        ordinal: usize,
        i: usize,
        step: &mut dyn FnMut() -> Result<R>,
    ) -> Result<R> {
        let gpu = crate::cuda::gpu(ordinal)?;
        let pool = self
            .pool
            .get_or_insert_with(|| GraphPool::new(&gpu))
            .clone();
        if i < WARM_STEPS + FILL_STEPS {
            return crate::cuda::graph::with_pool(&gpu, &pool, &mut *step);
        }
        match CudaGraph::capture(&gpu, &pool, &mut *step) {
            Ok((g, r)) => {
                g.launch()?;
                self.pool = None;
                self.state = State::Graph(g, r.clone());
                Ok(r)
            }
            Err(e) if self.mode == GraphMode::Auto => {
                let why = format!(
                    "the step could not be captured as a CUDA graph ({e}); running it eagerly"
                );
                eprintln!("cuda graph: {why}");
                self.fallback = Some(why);
                self.pool = None;
                step()
            }
            Err(e) => Err(Error::device(
                "--cuda-graph on",
                format!("capturing the training step failed: {e}"),
            )),
        }
    }
}
