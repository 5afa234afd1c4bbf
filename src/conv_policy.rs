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
//! they share every other setting of the run. It sits on the CUDA runtime's floor, which reads
//! it; `ops::conv2d::algorithms` sets it for a device and reads back its summary.

use crate::{Error, Result};
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

/// The policy in force.
pub fn conv_algorithms() -> ConvAlgorithms {
    if FASTEST.load(Ordering::Relaxed) {
        ConvAlgorithms::Fastest
    } else {
        ConvAlgorithms::Deterministic
    }
}

/// What this process's convolutions on one device chose under one policy, by cuDNN's own
/// measurements (its search times each algorithm once per distinct convolution), weighted by
/// how often each ran: taken after one training step, the times are that step's convolutions.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChoiceSummary {
    pub policy: ConvAlgorithms,
    /// Choices made: one per distinct direction, dtype and geometry.
    pub chosen: usize,
    /// Of those, where the policy passed over a faster algorithm that succeeded.
    pub passed_over: usize,
    /// Of those, chosen by a search short of workspace (the device could not give what the
    /// largest algorithm asks for; the choice is kept for this process only).
    pub short: usize,
    /// Of those, with cuDNN's measured times recorded (the sums below are over these).
    pub timed: usize,
    /// The calls of the timed convolutions (a geometry a model repeats counts each time).
    pub calls: u64,
    /// Milliseconds over those calls: the algorithms as chosen, and the fastest that succeeded.
    pub chosen_ms: f64,
    pub fastest_ms: f64,
}

impl std::fmt::Display for ChoiceSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cuDNN algorithms (--conv-algorithms {}): {} convolution directions chosen, {} \
             passed over a faster nondeterministic algorithm",
            self.policy.name(),
            self.chosen,
            self.passed_over
        )?;
        if self.short > 0 {
            write!(
                f,
                ", {} searched short of workspace (device memory: algorithms needing more were \
                 not timed)",
                self.short
            )?;
        }
        if self.timed > 0 {
            write!(
                f,
                "; over their {} calls{}, by cuDNN's search times: {:.3} ms as chosen, \
                 {:.3} ms with the fastest ({:+.1}%)",
                self.calls,
                if self.timed < self.chosen {
                    format!(" (of the {} directions timed)", self.timed)
                } else {
                    String::new()
                },
                self.chosen_ms,
                self.fastest_ms,
                100.0 * (self.chosen_ms / self.fastest_ms.max(f64::MIN_POSITIVE) - 1.0)
            )?;
        }
        Ok(())
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
    }

    #[test]
    fn the_summary_says_what_was_passed_over_and_how_many_were_timed() {
        let s = ChoiceSummary {
            policy: ConvAlgorithms::Deterministic,
            chosen: 4,
            passed_over: 1,
            short: 0,
            timed: 3,
            calls: 7,
            chosen_ms: 1.1,
            fastest_ms: 1.0,
        };
        let line = s.to_string();
        for part in [
            "(--conv-algorithms deterministic): 4 convolution directions chosen, 1 passed over",
            "over their 7 calls (of the 3 directions timed), by cuDNN's search times: 1.100 ms \
             as chosen, 1.000 ms with the fastest (+10.0%)",
        ] {
            assert!(line.contains(part), "{line}");
        }
        let untimed = ChoiceSummary { timed: 0, ..s }.to_string();
        assert!(!untimed.contains(" ms "), "{untimed}");
        assert!(!line.contains("short of workspace"), "{line}");
        let short = ChoiceSummary { short: 2, ..s }.to_string();
        let said = "1 passed over a faster nondeterministic algorithm, 2 searched short of \
                    workspace (device memory: algorithms needing more were not timed); over";
        assert!(short.contains(said), "{short}");
    }
}
