//! The lowest floor of the CUDA backend: every call into the CUDA driver, cuBLAS, cuDNN, NCCL
//! and nvJPEG goes through this module, and from here either to the real libraries (cudarc, loaded at
//! run time) or to the emulated device (feature `cuda-emu`, `src/cuda/emu/`: our kernels
//! compiled for the host and run on the CPU, and emulated libraries that check their arguments
//! as the real ones document and compute with numerics of their own). Everything above this module
//! (allocation, streams, modules, launches, the memory plan) is the same code in both modes.
//!
//! The functions keep the names and argument lists of the cudarc calls they replace, so a call
//! site reads as the C API it stands for. The mode is chosen once per process: by
//! [`select`] (the CLI's `--device cuda-emu`), else by `SIMCLR_CUDA=emu|real` (default real).
//! Counters of launches, copies and synchronisations are kept in both modes ([`counters`]).

pub mod counters;
pub mod cu;
pub mod cublas;
pub mod cudnn;
pub mod event;
pub mod graph;
pub mod host;
pub mod libraries;
pub mod loaded;
pub mod nccl;
pub mod nvjpeg;

pub use counters::{counters, Counters};

use std::sync::OnceLock;

/// Where CUDA calls go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The GPU, through the real libraries.
    Real,
    /// The emulated device on the CPU (feature `cuda-emu`).
    #[cfg(feature = "cuda-emu")]
    Emulated,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Real => "cuda",
            #[cfg(feature = "cuda-emu")]
            Mode::Emulated => "cuda-emu",
        }
    }
}

static MODE: OnceLock<Result<Mode, String>> = OnceLock::new();

/// Reads `SIMCLR_CUDA`: unset or `real` for the GPU, `emu` for the emulated device.
fn from_env() -> Result<Mode, String> {
    match std::env::var("SIMCLR_CUDA").as_deref() {
        Err(_) | Ok("") | Ok("real") => Ok(Mode::Real),
        #[cfg(feature = "cuda-emu")]
        Ok("emu") => Ok(Mode::Emulated),
        #[cfg(not(feature = "cuda-emu"))]
        Ok("emu") => Err(
            "SIMCLR_CUDA=emu asks for the emulated device, which this build does not have \
             (build with --features cuda-emu)"
                .to_string(),
        ),
        Ok(other) => Err(format!(
            "SIMCLR_CUDA is {other:?}; allowed: `real` (the GPU) or `emu` (the emulated device)"
        )),
    }
}

/// The mode of this process, or why none could be chosen (a bad `SIMCLR_CUDA`).
pub fn mode_or_reason() -> &'static Result<Mode, String> {
    MODE.get_or_init(from_env)
}

/// The mode of this process (real when `SIMCLR_CUDA` is invalid: the probe reports that).
pub fn mode() -> Mode {
    match mode_or_reason() {
        Ok(m) => *m,
        Err(_) => Mode::Real,
    }
}

/// Whether this process runs the emulated device (where tests may ask for what only the
/// emulation can say, or exactness a GPU's libraries do not give).
pub fn is_emulated() -> bool {
    mode() != Mode::Real
}

/// Chooses the mode before the first CUDA call; choosing the mode already in force is a no-op.
pub fn select(m: Mode) -> crate::Result<()> {
    let now = MODE.get_or_init(|| Ok(m));
    match now {
        Ok(cur) if *cur == m => Ok(()),
        Ok(cur) => Err(crate::Error::device(
            "cuda",
            format!(
                "this process already uses {} and cannot switch to {}",
                cur.name(),
                m.name()
            ),
        )),
        Err(e) => Err(crate::Error::device("cuda", e.clone())),
    }
}

/// Sends a call to the real library or to the emulated one.
macro_rules! route {
    (real => $real:expr, emu => $emu:expr $(,)?) => {
        match $crate::cuda::driver::mode() {
            $crate::cuda::driver::Mode::Real => $real,
            #[cfg(feature = "cuda-emu")]
            $crate::cuda::driver::Mode::Emulated => $emu,
        }
    };
}
pub(crate) use route;
