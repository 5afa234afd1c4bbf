//! `--profile` on the trainer: profile one chosen optimizer step without the stages knowing.
//! The optimizers open [`optimizer_step`] around their update; once [`arm`]ed, the end of update
//! `step - 1` starts a session and the end of update `step` finishes it and prints the table.
//! The profiled window therefore holds exactly one step: its data loading, forward, backward and
//! update.

use super::{phase, Phase, Range, Session, Table};
use crate::{Device, Error, Result};
use std::cell::RefCell;

pub(crate) type Starter = Box<dyn FnMut() -> Result<Session>>;
pub(crate) type Report = Box<dyn FnMut(usize, Result<Table>)>;

struct Armed {
    target: usize,
    seen: usize,
    start: Starter,
    report: Report,
    session: Option<Session>,
}

thread_local! {
    static ARMED: RefCell<Option<Armed>> = const { RefCell::new(None) };
}

/// Profiles the `step`-th optimizer step (counted from 1) run on this thread from now on, on
/// `device`, and prints its table to stdout.
pub fn arm(step: usize, device: Device) -> Result<()> {
    arm_with(
        step,
        Box::new(move || Session::start(device)),
        Box::new(|step, table| match table {
            Ok(t) => println!("\nprofile of training step {step}\n{t}"),
            Err(e) => eprintln!("profile of training step {step} failed: {e}"),
        }),
    )
}

pub(crate) fn arm_with(target: usize, mut start: Starter, report: Report) -> Result<()> {
    if target == 0 {
        return Err(Error::Config("the profiled step is counted from 1".into()));
    }
    let session = if target == 1 { Some(start()?) } else { None };
    ARMED.with_borrow_mut(|a| {
        *a = Some(Armed {
            target,
            seen: 0,
            start,
            report,
            session,
        })
    });
    Ok(())
}

/// The optimizer phase of a step; its end counts a step for [`arm`].
#[must_use = "the optimizer phase ends when this guard is dropped"]
pub struct StepRange {
    range: Option<Range>,
}

pub fn optimizer_step() -> StepRange {
    StepRange {
        range: Some(phase(Phase::Optimizer)),
    }
}

impl Drop for StepRange {
    fn drop(&mut self) {
        drop(self.range.take());
        // Taken out of the cell so that the report (and its printing) runs unborrowed.
        let Some(mut a) = ARMED.with_borrow_mut(Option::take) else {
            return;
        };
        a.seen += 1;
        if a.seen == a.target {
            if let Some(s) = a.session.take() {
                (a.report)(a.target, s.finish().map(|p| Table::new(&p)));
            }
            return;
        }
        if a.seen + 1 == a.target {
            match (a.start)() {
                Ok(s) => a.session = Some(s),
                Err(e) => return (a.report)(a.target, Err(e)),
            }
        }
        ARMED.with_borrow_mut(|slot| *slot = Some(a));
    }
}
