//! W ranks as threads of one process, sharing buffers: CPU data parallelism, and the reference
//! the distributed code is tested with.
//!
//! Every collective is one rendezvous: each rank deposits its tensors; the last to arrive
//! computes the result once from the deposits *in rank order* (so sums do not depend on which
//! thread came first) and every rank takes a shared reference to it. A rank whose handle is
//! dropped (its thread finished, failed or panicked) makes the collectives that wait for it
//! fail instead of hanging.

use super::{concat_rows, Comm, Communicator};
use crate::ops::elementwise::add_forward;
use crate::{Error, Result, Tensor};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

const OP: &str = "thread group";
const LEFT: &str = "left the group";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    AllReduce,
    AllGather,
    Broadcast,
    Barrier,
}

struct Deposit {
    kind: Kind,
    tensors: Vec<Tensor>,
}

type Outcome = std::result::Result<Vec<Tensor>, String>;

struct State {
    slots: Vec<Option<Deposit>>,
    arrived: usize,
    /// Completed rendezvous.
    round: u64,
    result: Option<Arc<Outcome>>,
    /// Ranks yet to take the current result; a new round waits for zero.
    readers_left: usize,
    /// The first rank whose handle was dropped.
    gone: Option<usize>,
}

struct Shared {
    world: usize,
    state: Mutex<State>,
    cv: Condvar,
}

/// One rank's handle. [`ThreadGroup::new`] makes all of a group's handles; give one to each
/// thread (or use [`ThreadGroup::run`]).
pub struct ThreadGroup {
    shared: Arc<Shared>,
    rank: usize,
}

impl ThreadGroup {
    /// The handles of ranks 0..world of a new group.
    pub fn new(world: usize) -> Result<Vec<ThreadGroup>> {
        if world == 0 {
            return Err(Error::Config(
                "a thread group needs at least one rank".into(),
            ));
        }
        let shared = Arc::new(Shared {
            world,
            state: Mutex::new(State {
                slots: (0..world).map(|_| None).collect(),
                arrived: 0,
                round: 0,
                result: None,
                readers_left: 0,
                gone: None,
            }),
            cv: Condvar::new(),
        });
        Ok((0..world)
            .map(|rank| ThreadGroup {
                shared: shared.clone(),
                rank,
            })
            .collect())
    }

    /// Runs `f` on `world` threads, one rank each, and returns their results in rank order, or
    /// the error that stopped the group (a rank's own error rather than the others' reports
    /// that it left).
    pub fn run<T: Send>(world: usize, f: impl Fn(Comm) -> Result<T> + Sync) -> Result<Vec<T>> {
        let ranks = ThreadGroup::new(world)?;
        let results: Vec<Result<T>> = std::thread::scope(|s| {
            let f = &f;
            let handles: Vec<_> = ranks
                .into_iter()
                .map(|g| s.spawn(move || f(Arc::new(g))))
                .collect();
            handles
                .into_iter()
                .enumerate()
                .map(|(r, h)| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::device(OP, format!("rank {r} panicked"))))
                })
                .collect()
        });
        let root_cause = results
            .iter()
            .position(|r| matches!(r, Err(e) if !e.to_string().contains(LEFT)));
        let mut out = Vec::with_capacity(world);
        let mut first_err = None;
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(v) => out.push(v),
                Err(e) if root_cause.is_none_or(|c| c == i) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {}
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        self.shared.state.lock().map_err(|_| poisoned())
    }

    fn left_error(&self, gone: usize) -> Error {
        Error::device(
            OP,
            format!(
                "rank {gone} {LEFT} while rank {} waited in a collective",
                self.rank
            ),
        )
    }

    /// One rendezvous: deposits `tensors`, returns the result computed from all deposits.
    fn exchange(&self, kind: Kind, tensors: Vec<Tensor>) -> Result<Arc<Outcome>> {
        let sh = &*self.shared;
        let mut st = self.lock()?;
        // The previous result must be taken by everyone before its slots are reused.
        while st.readers_left > 0 {
            st = sh.cv.wait(st).map_err(|_| poisoned())?;
        }
        if let Some(g) = st.gone {
            return Err(self.left_error(g));
        }
        st.slots[self.rank] = Some(Deposit { kind, tensors });
        st.arrived += 1;
        let round = st.round;
        if st.arrived == sh.world {
            let deposits: Vec<Deposit> = st.slots.iter_mut().map(|s| s.take().unwrap()).collect();
            st.result = Some(Arc::new(reduce(deposits)));
            st.arrived = 0;
            st.readers_left = sh.world;
            st.round += 1;
            sh.cv.notify_all();
        } else {
            while st.round == round {
                if let Some(g) = st.gone {
                    return Err(self.left_error(g));
                }
                st = sh.cv.wait(st).map_err(|_| poisoned())?;
            }
        }
        let out = st.result.clone().expect("a result for the finished round");
        st.readers_left -= 1;
        if st.readers_left == 0 {
            st.result = None;
            sh.cv.notify_all();
        }
        Ok(out)
    }

    fn collective(
        &self,
        kind: Kind,
        tensors: Vec<Tensor>,
        what: &'static str,
    ) -> Result<Vec<Tensor>> {
        match &*self.exchange(kind, tensors)? {
            Ok(v) => Ok(v.clone()),
            Err(msg) => Err(Error::device(what, msg.clone())),
        }
    }
}

impl Drop for ThreadGroup {
    fn drop(&mut self) {
        let mut st = self
            .shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        st.gone.get_or_insert(self.rank);
        self.shared.cv.notify_all();
    }
}

fn poisoned() -> Error {
    Error::device(OP, "a rank panicked inside a collective")
}

/// The result of one rendezvous from the deposits of ranks 0..W, in that order.
fn reduce(deposits: Vec<Deposit>) -> Outcome {
    let kind = deposits[0].kind;
    let k = deposits[0].tensors.len();
    for (r, d) in deposits.iter().enumerate() {
        if d.kind != kind || d.tensors.len() != k {
            return Err(format!(
                "rank {r} called {:?} with {} tensors while rank 0 called {kind:?} with {k}",
                d.kind,
                d.tensors.len()
            ));
        }
    }
    let column = |i: usize| deposits.iter().map(move |d| &d.tensors[i]);
    let agree = |i: usize, whole_shape: bool| -> std::result::Result<(), String> {
        let t0 = &deposits[0].tensors[i];
        for (r, t) in column(i).enumerate() {
            let shape_ok = if whole_shape {
                t.shape() == t0.shape()
            } else {
                t.rank() > 0 && t0.rank() > 0 && t.shape()[1..] == t0.shape()[1..]
            };
            if !shape_ok || t.dtype() != t0.dtype() {
                return Err(format!(
                    "tensor {i}: rank {r} passed {:?} {}, rank 0 {:?} {}",
                    t.shape(),
                    t.dtype().name(),
                    t0.shape(),
                    t0.dtype().name()
                ));
            }
        }
        Ok(())
    };
    let on_first = |t: &Tensor| t.to_device(deposits[0].tensors[0].device());
    let run = || -> std::result::Result<Vec<Tensor>, String> {
        match kind {
            Kind::AllReduce => (0..k)
                .map(|i| {
                    agree(i, true)?;
                    let mut acc = deposits[0].tensors[i].clone();
                    for t in column(i).skip(1) {
                        acc = on_first(t)
                            .and_then(|t| add_forward(&acc, &t))
                            .map_err(|e| e.to_string())?;
                    }
                    Ok(acc)
                })
                .collect(),
            Kind::AllGather => {
                agree(0, false)?;
                let parts: Vec<Tensor> = column(0)
                    .map(on_first)
                    .collect::<Result<_>>()
                    .map_err(|e| e.to_string())?;
                Ok(vec![concat_rows(&parts).map_err(|e| e.to_string())?])
            }
            Kind::Broadcast => {
                agree(0, true)?;
                Ok(vec![deposits[0].tensors[0].clone()])
            }
            Kind::Barrier => Ok(Vec::new()),
        }
    };
    run()
}

impl Communicator for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.shared.world
    }
    fn all_reduce_sum(&self, ts: &[Tensor]) -> Result<Vec<Tensor>> {
        let devices: Vec<_> = ts.iter().map(|t| t.device()).collect();
        let sums = self.collective(Kind::AllReduce, ts.to_vec(), "all_reduce_sum")?;
        sums.iter()
            .zip(devices)
            .map(|(t, d)| t.to_device(d))
            .collect()
    }
    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        let r = self.collective(Kind::AllGather, vec![t.clone()], "all_gather")?;
        r[0].to_device(t.device())
    }
    fn broadcast(&self, t: &Tensor) -> Result<Tensor> {
        let r = self.collective(Kind::Broadcast, vec![t.clone()], "broadcast")?;
        r[0].to_device(t.device())
    }
    fn barrier(&self) -> Result<()> {
        self.collective(Kind::Barrier, Vec::new(), "barrier")
            .map(|_| ())
    }
}
