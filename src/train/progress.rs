//! Progress of a training stage. On a terminal: one bar rewritten in place (steps, loss, rate,
//! ETA). Otherwise (CI, Slurm logs, pipes): one plain line at most every `every` seconds, so a
//! log shows the run moving without one line per step. Both go to stderr; stdout keeps the
//! results.

use std::cell::Cell;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    stage: &'static str,
    total: usize,
    epochs: usize,
    tty: bool,
    every: Duration,
    /// First step this process ran and when: the rate and ETA count this process's steps only.
    first: Cell<Option<(usize, Instant)>>,
    last_line: Cell<Option<Instant>>,
    /// Ranks after 0 of a multi-process job print nothing: one job, one progress display.
    silent: bool,
}

/// What one progress report shows.
pub struct Report {
    pub epoch: usize,
    pub step: usize,
    pub loss: f64,
    pub lr: f64,
    pub images_per_s: f64,
}

/// "1h02m", "3m20s", "45s".
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() {
        return "?".into();
    }
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// The loss shown: "-" before the first logged interval (pretraining reads its device sums
/// once per `--log-every` steps, so the first lines have none yet; a non-finite loss that was
/// read stops the run in `guard::check_loss` before it is shown).
fn loss_text(loss: f64) -> String {
    if loss.is_finite() {
        format!("{loss:.4}")
    } else {
        "-".into()
    }
}

impl Progress {
    /// `every_secs`: the plain form's interval (0: every step).
    pub fn new(stage: &'static str, total: usize, epochs: usize, every_secs: f64) -> Self {
        Progress {
            stage,
            total,
            epochs,
            tty: std::io::stderr().is_terminal(),
            every: Duration::from_secs_f64(every_secs.max(0.0)),
            first: Cell::new(None),
            last_line: Cell::new(None),
            silent: false,
        }
    }

    /// This progress display, shown only when `shown` (rank 0 of a job).
    pub fn shown_if(self, shown: bool) -> Self {
        Progress {
            silent: !shown,
            ..self
        }
    }

    /// Seconds left at this process's rate so far.
    fn eta(&self, step: usize, now: Instant) -> f64 {
        match self.first.get() {
            Some((s0, t0)) if step > s0 => {
                let per_step = now.duration_since(t0).as_secs_f64() / (step - s0) as f64;
                per_step * self.total.saturating_sub(step) as f64
            }
            _ => f64::NAN,
        }
    }

    /// The plain (not a terminal) line.
    pub fn line(&self, r: &Report, eta: f64) -> String {
        format!(
            "{} epoch {}/{} step {}/{} loss {} lr {:.4} {:.0} img/s ETA {}",
            self.stage,
            r.epoch + 1,
            self.epochs,
            r.step,
            self.total,
            loss_text(r.loss),
            r.lr,
            r.images_per_s,
            duration(eta)
        )
    }

    /// Whether step `step` (1-based, as counted after it ran) writes a metrics line: every
    /// `log_every` steps, and the stage's last step, so a stage shorter than `log_every` steps
    /// still logs.
    pub fn log_due(&self, step: usize, log_every: usize) -> bool {
        step % log_every.max(1) == 0 || step == self.total
    }

    /// Whether a plain line is due at `now` (the first step's always is).
    pub fn due(&self, now: Instant, step: usize) -> bool {
        match self.last_line.get() {
            None => true,
            Some(t) => now.duration_since(t) >= self.every || step == self.total,
        }
    }

    pub fn update(&self, r: Report) {
        if self.silent {
            return;
        }
        let now = Instant::now();
        if self.first.get().is_none() {
            // The rate starts at the end of the first step of this process.
            self.first.set(Some((r.step, now)));
        }
        let eta = self.eta(r.step, now);
        if self.tty {
            let frac = r.step as f64 / self.total.max(1) as f64;
            let filled = ((frac * 24.0) as usize).min(24);
            let bar = format!("{}{}", "#".repeat(filled), ".".repeat(24 - filled));
            eprint!(
                "\r{:<11} [{bar}] {}/{} ep {}/{} loss {} {:.0} img/s ETA {}   ",
                self.stage,
                r.step,
                self.total,
                r.epoch + 1,
                self.epochs,
                loss_text(r.loss),
                r.images_per_s,
                duration(eta)
            );
            let _ = std::io::stderr().flush();
        } else if self.due(now, r.step) {
            self.last_line.set(Some(now));
            eprintln!("{}", self.line(&r, eta));
        }
    }

    /// Ends the bar's line on a terminal (the plain form has nothing open).
    pub fn finish(&self) {
        if self.tty && !self.silent {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(every: f64) -> Progress {
        Progress {
            tty: false,
            ..Progress::new("finetune", 200, 4, every)
        }
    }

    #[test]
    fn the_plain_line_names_stage_epoch_step_loss_rate_and_eta() {
        let p = plain(10.0);
        let r = Report {
            epoch: 1,
            step: 60,
            loss: 1.23456,
            lr: 0.5,
            images_per_s: 321.4,
        };
        assert_eq!(
            p.line(&r, 200.0),
            "finetune epoch 2/4 step 60/200 loss 1.2346 lr 0.5000 321 img/s ETA 3m20s"
        );
        let unread = Report {
            loss: f64::NAN,
            ..r
        };
        assert_eq!(
            p.line(&unread, 200.0),
            "finetune epoch 2/4 step 60/200 loss - lr 0.5000 321 img/s ETA 3m20s"
        );
        assert_eq!(duration(3725.0), "1h02m");
        assert_eq!(duration(f64::NAN), "?");
    }

    #[test]
    fn plain_lines_are_throttled_but_the_last_step_always_prints() {
        let p = plain(5.0);
        let t0 = Instant::now();
        assert!(p.due(t0, 1));
        p.last_line.set(Some(t0));
        assert!(!p.due(t0 + Duration::from_secs(4), 50));
        assert!(p.due(t0 + Duration::from_secs(5), 51));
        assert!(p.due(t0 + Duration::from_secs(1), 200), "last step");
        let every_step = plain(0.0);
        every_step.last_line.set(Some(t0));
        assert!(every_step.due(t0, 2));
    }

    #[test]
    fn metrics_lines_every_log_every_steps_and_at_the_last_step() {
        let p = plain(0.0); // 200 steps
        let due: Vec<usize> = (1..=200).filter(|&s| p.log_due(s, 70)).collect();
        assert_eq!(due, vec![70, 140, 200]);
        // A stage shorter than log_every logs its last step only.
        let due: Vec<usize> = (1..=200).filter(|&s| p.log_due(s, 500)).collect();
        assert_eq!(due, vec![200]);
    }

    #[test]
    fn eta_counts_this_processs_steps_only() {
        let p = plain(1.0);
        let t0 = Instant::now();
        // Resumed at step 100: 10 steps in 5 s leaves 90 steps, 45 s.
        p.first.set(Some((100, t0)));
        let eta = p.eta(110, t0 + Duration::from_secs(5));
        assert!((eta - 45.0).abs() < 1e-6, "{eta}");
    }
}
