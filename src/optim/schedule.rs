//! Learning-rate schedule of SimCLRv2: a peak rate scaled with the batch size, linear warmup,
//! then cosine decay to zero (as the official code: `peak·step/warmup` during warmup, then
//! `peak·½(1 + cos(π·(step − warmup)/(total − warmup)))`).

use crate::{Error, Result};

/// How the peak learning rate grows with the batch size B.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrScaling {
    /// `base·sqrt(B)`; the paper uses base 0.075 for pretraining, 0.005 for fine-tuning.
    Sqrt { base: f64 },
    /// `base·B/256`; the paper's alternative uses base 0.3.
    Linear { base: f64 },
}

impl LrScaling {
    /// 0.075·sqrt(B), the pretraining default.
    pub fn sqrt() -> Self {
        LrScaling::Sqrt { base: 0.075 }
    }
    /// 0.3·B/256.
    pub fn linear() -> Self {
        LrScaling::Linear { base: 0.3 }
    }
    pub fn peak(self, batch: usize) -> f64 {
        match self {
            LrScaling::Sqrt { base } => base * (batch as f64).sqrt(),
            LrScaling::Linear { base } => base * batch as f64 / 256.0,
        }
    }
}

/// Length of the warmup.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Warmup {
    Steps(usize),
    /// A fraction of the total number of steps (the paper: 5%), rounded to the nearest step.
    Fraction(f64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrSchedule {
    peak: f64,
    warmup_steps: usize,
    total_steps: usize,
}

impl LrSchedule {
    pub fn new(
        scaling: LrScaling,
        batch: usize,
        warmup: Warmup,
        total_steps: usize,
    ) -> Result<Self> {
        let bad = |m: String| Err(Error::Config(format!("lr schedule: {m}")));
        if batch == 0 || total_steps == 0 {
            return bad(format!(
                "batch ({batch}) and total steps ({total_steps}) must be > 0"
            ));
        }
        let warmup_steps = match warmup {
            Warmup::Steps(s) => s,
            Warmup::Fraction(f) if (0.0..=1.0).contains(&f) => {
                (f * total_steps as f64).round() as usize
            }
            Warmup::Fraction(f) => return bad(format!("warmup fraction {f} is not in [0, 1]")),
        };
        if warmup_steps > total_steps {
            return bad(format!(
                "{warmup_steps} warmup steps exceed the {total_steps} total steps"
            ));
        }
        let peak = scaling.peak(batch);
        if !(peak.is_finite() && peak > 0.0) {
            return bad(format!("peak learning rate {peak} must be finite and > 0"));
        }
        Ok(LrSchedule {
            peak,
            warmup_steps,
            total_steps,
        })
    }

    pub fn peak(&self) -> f64 {
        self.peak
    }
    pub fn warmup_steps(&self) -> usize {
        self.warmup_steps
    }
    pub fn total_steps(&self) -> usize {
        self.total_steps
    }

    /// The rate of optimizer step `step` (0-based): 0 at step 0 of a warmup, the peak at the
    /// end of warmup, 0 from `total_steps` on.
    pub fn lr_at(&self, step: usize) -> f64 {
        let (w, t) = (self.warmup_steps, self.total_steps);
        if step < w {
            return self.peak * step as f64 / w as f64;
        }
        if step >= t {
            return 0.0;
        }
        let progress = (step - w) as f64 / (t - w) as f64;
        (self.peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(warmup: Warmup, total: usize) -> LrSchedule {
        LrSchedule::new(LrScaling::sqrt(), 4096, warmup, total).unwrap()
    }

    #[test]
    fn peak_follows_the_scaling_rule() {
        assert!((LrScaling::sqrt().peak(4096) - 0.075 * 64.0).abs() < 1e-12);
        assert!((LrScaling::linear().peak(4096) - 4.8).abs() < 1e-12);
    }

    #[test]
    fn warmup_endpoints_and_peak() {
        let s = sched(Warmup::Steps(10), 100);
        assert_eq!(s.lr_at(0), 0.0);
        assert!((s.lr_at(5) - s.peak() / 2.0).abs() < 1e-12);
        assert_eq!(s.lr_at(10), s.peak());
        let max = (0..=100).map(|i| s.lr_at(i)).fold(0.0, f64::max);
        assert_eq!(max, s.peak());
        for i in 1..10 {
            assert!(s.lr_at(i) > s.lr_at(i - 1), "warmup must increase at {i}");
        }
    }

    #[test]
    fn cosine_decays_monotonically_to_zero() {
        let s = sched(Warmup::Fraction(0.05), 200);
        assert_eq!(s.warmup_steps(), 10);
        for i in 11..=200 {
            assert!(s.lr_at(i) <= s.lr_at(i - 1), "not monotone at {i}");
        }
        // Halfway through the decay the cosine is at half the peak.
        assert!((s.lr_at(105) - s.peak() / 2.0).abs() < 1e-12);
        assert!(s.lr_at(199) > 0.0);
        assert_eq!(s.lr_at(200), 0.0);
        assert_eq!(s.lr_at(1000), 0.0);
    }

    #[test]
    fn no_warmup_starts_at_peak() {
        let s = sched(Warmup::Steps(0), 10);
        assert_eq!(s.lr_at(0), s.peak());
    }

    #[test]
    fn bad_configurations_are_errors() {
        let new = |w, t| LrSchedule::new(LrScaling::sqrt(), 256, w, t);
        assert!(new(Warmup::Steps(11), 10).is_err());
        assert!(new(Warmup::Fraction(1.5), 10).is_err());
        assert!(new(Warmup::Steps(0), 0).is_err());
        assert!(
            LrSchedule::new(LrScaling::Linear { base: -1.0 }, 256, Warmup::Steps(0), 5).is_err()
        );
    }
}
