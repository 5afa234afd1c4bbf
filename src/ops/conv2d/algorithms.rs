//! Which cuDNN algorithms this process's convolutions may use (`--conv-algorithms`,
//! `conv_algorithms`): `deterministic` (the default) or `fastest`.
//!
//! Deterministic algorithms give the same bits on every run, so a CUDA graph replay equals the
//! eager step, `--resume` continues bit for bit and a failing test replays. Some backward
//! algorithms add partial sums with atomics, in an order that changes from run to run; where
//! one of them is the fastest, `fastest` takes it, as PyTorch does by default
//! (`cudnn.benchmark = True`, `cudnn.deterministic = False`), which is the setting its side of
//! our speed comparisons runs with. The CPU's convolutions are deterministic either way.
//!
//! One setting per process, not per device: data-parallel ranks of one process share it, as
//! they share every other setting of the run.

use crate::{Device, Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ConvAlgorithms {
    /// The fastest algorithm that gives the same bits on every run.
    #[default]
    Deterministic,
    /// The fastest algorithm, deterministic or not.
    Fastest,
}

impl ConvAlgorithms {
    pub fn name(self) -> &'static str {
        match self {
            ConvAlgorithms::Deterministic => "deterministic",
            ConvAlgorithms::Fastest => "fastest",
        }
    }

    /// `s` as the value of `what` (a flag or config key, named in the error).
    pub fn parse(what: &str, s: &str) -> Result<Self> {
        match s {
            "deterministic" => Ok(ConvAlgorithms::Deterministic),
            "fastest" => Ok(ConvAlgorithms::Fastest),
            other => Err(Error::Config(format!(
                "{what} is {other:?}; allowed: deterministic, fastest"
            ))),
        }
    }
}

static FASTEST: AtomicBool = AtomicBool::new(false);

/// Sets the policy of every convolution this process runs from now on (each convolution's
/// choice is kept per policy, so switching back finds the earlier choices).
pub fn set_conv_algorithms(policy: ConvAlgorithms) {
    FASTEST.store(policy == ConvAlgorithms::Fastest, Ordering::Relaxed);
}

/// Sets `policy` for a run on `device`; `fastest` on the CPU is refused (naming `what`, the
/// flag or key it came from): there it would change nothing the user could measure.
pub fn use_conv_algorithms(policy: ConvAlgorithms, device: Device, what: &str) -> Result<()> {
    if policy == ConvAlgorithms::Fastest && device == Device::Cpu {
        return Err(Error::Config(format!(
            "{what} fastest chooses among cuDNN's algorithms (--device cuda); the CPU's \
             convolutions have one algorithm, which is deterministic"
        )));
    }
    set_conv_algorithms(policy);
    Ok(())
}

/// The policy in force.
pub fn conv_algorithms() -> ConvAlgorithms {
    if FASTEST.load(Ordering::Relaxed) {
        ConvAlgorithms::Fastest
    } else {
        ConvAlgorithms::Deterministic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_anything_else_is_refused_naming_the_key() {
        for p in [ConvAlgorithms::Deterministic, ConvAlgorithms::Fastest] {
            assert_eq!(ConvAlgorithms::parse("k", p.name()).unwrap(), p);
        }
        let e = ConvAlgorithms::parse("conv_algorithms", "fast").unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("conv_algorithms") && m.contains("\"fast\"") && m.contains("fastest"),
            "{m}"
        );
        // The CPU has nothing to choose: refused, and the policy in force is left as it was.
        let before = conv_algorithms();
        let e = use_conv_algorithms(ConvAlgorithms::Fastest, Device::Cpu, "--conv-algorithms");
        let m = e.unwrap_err().to_string();
        assert!(
            m.contains("--conv-algorithms fastest") && m.contains("cuda"),
            "{m}"
        );
        assert_eq!(conv_algorithms(), before);
        use_conv_algorithms(ConvAlgorithms::Deterministic, Device::Cpu, "k").unwrap();
    }
}
