//! MPI as a [`Communicator`] for CPU ranks, one process each (feature `mpi`; Open MPI loaded
//! at run time, see [`ffi`]).
//!
//! Tensors travel through host buffers: f64 when every tensor of a call is f64, else f32 (the
//! training dtype on the CPU; other dtypes are converted there and back). An all-reduce packs
//! all its tensors into one buffer, so a bucket of gradients is one collective; a started one
//! (`all_reduce_sum_start`, an `MPI_Iallreduce`) is polled only when waited for, so backward
//! runs on while it is in flight.
//!
//! **Faults.** `MPI_ERRORS_RETURN` is set on the world communicator, so MPI reports errors
//! instead of aborting, and every collective is non-blocking, polled with `MPI_Test` until a
//! deadline (`--dist-timeout-s`). A rank that died or hangs therefore ends the waiting ranks
//! with an error naming this rank, the collective and its sequence number; the process then
//! exits without `MPI_Finalize`, and the launcher (mpirun, srun, torchrun) ends the rest of the
//! job. After a failure every later collective fails at once: a half-finished collective leaves
//! the world in an unknown state.
//!
//! MPI is initialised once per process ([`world`]) and finalised by [`finalize`] only after a
//! run that succeeded (finalising after a failure could wait forever for the others).

mod comm;
pub mod ffi;

use crate::{Error, Result};
use ffi::{Handle, Lib};
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct Mpi {
    lib: Lib,
    rank: usize,
    world: usize,
    timeout_ms: AtomicU64,
    /// Serialises calls (MPI_THREAD_SERIALIZED) and numbers the collectives.
    seq: Mutex<u64>,
    failed: AtomicBool,
}

static WORLD: OnceLock<std::result::Result<Arc<Mpi>, String>> = OnceLock::new();

/// The world communicator of this process, initialising MPI on the first call; `timeout` is
/// how long a collective may wait for the other ranks.
pub fn world(timeout: Duration) -> Result<Arc<Mpi>> {
    let mpi = WORLD
        .get_or_init(|| Mpi::init().map(Arc::new).map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| Error::device("mpi", e))?;
    mpi.timeout_ms
        .store(timeout.as_millis().max(1) as u64, Ordering::Relaxed);
    Ok(mpi)
}

/// Finalises MPI if this process initialised it and no collective failed.
pub fn finalize() -> Result<()> {
    if let Some(Ok(m)) = WORLD.get() {
        if !m.failed.load(Ordering::SeqCst) {
            let _guard = m.seq.lock().map_err(|_| poisoned())?;
            // SAFETY: MPI was initialised by this process; nothing calls it afterwards.
            m.lib.check("MPI_Finalize", unsafe { (m.lib.finalize)() })?;
        }
    }
    Ok(())
}

fn poisoned() -> Error {
    Error::device("mpi", "a thread panicked inside a collective")
}

/// Elements of a host buffer MPI can carry.
trait Elem: Copy + Default {
    fn mpi_type(lib: &Lib) -> Handle;
}
impl Elem for f32 {
    fn mpi_type(lib: &Lib) -> Handle {
        lib.float
    }
}
impl Elem for f64 {
    fn mpi_type(lib: &Lib) -> Handle {
        lib.double
    }
}
impl Elem for c_int {
    fn mpi_type(lib: &Lib) -> Handle {
        lib.int
    }
}
impl Elem for u8 {
    fn mpi_type(lib: &Lib) -> Handle {
        lib.byte
    }
}

fn count(n: usize, what: &str) -> Result<c_int> {
    c_int::try_from(n).map_err(|_| {
        Error::device(
            "mpi",
            format!("{what}: {n} elements exceed MPI's int count"),
        )
    })
}

impl Mpi {
    fn init() -> Result<Mpi> {
        let lib = Lib::load()?;
        let mut done: c_int = 0;
        // SAFETY: plain C calls with valid out-pointers; argc/argv may be null.
        lib.check("MPI_Initialized", unsafe { (lib.initialized)(&mut done) })?;
        if done == 0 {
            let mut provided: c_int = 0;
            let code = unsafe {
                (lib.init_thread)(
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    ffi::THREAD_SERIALIZED,
                    &mut provided,
                )
            };
            lib.check("MPI_Init_thread", code)?;
            if provided < ffi::THREAD_SERIALIZED {
                return Err(Error::device(
                    "mpi",
                    format!("MPI_Init_thread: the library provides thread level {provided}, and calls from several threads (level 2) are needed"),
                ));
            }
        }
        let code = unsafe { (lib.set_errhandler)(lib.comm_world, lib.errors_return) };
        lib.check("MPI_Comm_set_errhandler", code)?;
        let (mut rank, mut world): (c_int, c_int) = (0, 0);
        lib.check("MPI_Comm_rank", unsafe {
            (lib.comm_rank)(lib.comm_world, &mut rank)
        })?;
        lib.check("MPI_Comm_size", unsafe {
            (lib.comm_size)(lib.comm_world, &mut world)
        })?;
        Ok(Mpi {
            lib,
            rank: rank as usize,
            world: world as usize,
            timeout_ms: AtomicU64::new(300_000),
            seq: Mutex::new(0),
            failed: AtomicBool::new(false),
        })
    }

    /// Starts one collective with `start` (which fills in the request) and polls it to the
    /// deadline. The buffers `start` points into must outlive this call, which they do: the
    /// caller owns them, and on a timeout the process is about to end.
    fn run(&self, what: &str, start: impl FnOnce(&Lib, *mut Handle) -> c_int) -> Result<()> {
        let (req, seq) = self.start(what, start)?;
        self.poll(what, seq, req)
    }

    /// Starts one collective; returns its request and sequence number for [`Mpi::poll`]. The
    /// buffers `start` points into must stay where they are until the poll returns.
    fn start(
        &self,
        what: &str,
        start: impl FnOnce(&Lib, *mut Handle) -> c_int,
    ) -> Result<(Handle, u64)> {
        let mut seq = self.seq.lock().map_err(|_| poisoned())?;
        *seq += 1;
        if self.failed.load(Ordering::SeqCst) {
            return Err(self.fault(what, *seq, "an earlier collective failed"));
        }
        let mut req: Handle = std::ptr::null_mut();
        let started = self.lib.check(what, start(&self.lib, &mut req));
        if let Err(e) = started {
            self.failed.store(true, Ordering::SeqCst);
            return Err(self.fault(what, *seq, &e.to_string()));
        }
        Ok((req, *seq))
    }

    /// Polls a started collective with `MPI_Test` until it completes or the deadline passes
    /// (each test under the lock: calls are serialised, MPI_THREAD_SERIALIZED).
    fn poll(&self, what: &str, seq: u64, mut req: Handle) -> Result<()> {
        let timeout = Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed));
        let t0 = Instant::now();
        let mut polls = 0u32;
        loop {
            let mut flag: c_int = 0;
            let code = {
                let _serial = self.seq.lock().map_err(|_| poisoned())?;
                // SAFETY: req is the live request the start call returned.
                unsafe { (self.lib.test)(&mut req, &mut flag, std::ptr::null_mut()) }
            };
            if let Err(e) = self.lib.check("MPI_Test", code) {
                self.failed.store(true, Ordering::SeqCst);
                return Err(self.fault(what, seq, &e.to_string()));
            }
            if flag != 0 {
                return Ok(());
            }
            if t0.elapsed() > timeout {
                self.failed.store(true, Ordering::SeqCst);
                let msg = format!(
                    "did not complete within {:.1} s (--dist-timeout-s): another rank died, \
                     hangs, or called a different collective",
                    timeout.as_secs_f64()
                );
                return Err(self.fault(what, seq, &msg));
            }
            // Spin briefly (a step's collectives are usually quick), then back off so a
            // rank waiting on a slow peer leaves it the CPU.
            polls += 1;
            if polls > 200 {
                let us = (polls as u64 - 200).min(1000);
                std::thread::sleep(Duration::from_micros(us));
            }
        }
    }

    fn fault(&self, what: &str, seq: u64, msg: &str) -> Error {
        Error::device(
            "mpi",
            format!(
                "rank {} of {}: {what} (collective #{seq}) {msg}",
                self.rank, self.world
            ),
        )
    }

    /// Starts the sum of `send` into `recv` (same length); both must stay where they are until
    /// [`Mpi::poll`] returns.
    fn all_reduce_start<T: Elem>(&self, send: &[T], recv: &mut [T]) -> Result<(Handle, u64)> {
        let n = count(send.len(), "all_reduce_sum")?;
        self.start("all_reduce_sum", |lib, req| unsafe {
            (lib.iallreduce)(
                send.as_ptr().cast(),
                recv.as_mut_ptr().cast(),
                n,
                T::mpi_type(lib),
                lib.op_sum,
                lib.comm_world,
                req,
            )
        })
    }

    /// Every rank's `send` concatenated in rank order (lengths may differ).
    fn all_gather_buf<T: Elem>(&self, send: &[T]) -> Result<(Vec<T>, Vec<usize>)> {
        let mine = [count(send.len(), "all_gather")?];
        let mut counts: Vec<c_int> = vec![0; self.world];
        self.run("all_gather (sizes)", |lib, req| unsafe {
            (lib.iallgather)(
                mine.as_ptr().cast(),
                1,
                lib.int,
                counts.as_mut_ptr().cast(),
                1,
                lib.int,
                lib.comm_world,
                req,
            )
        })?;
        let mut displs = Vec::with_capacity(self.world);
        let mut total = 0usize;
        for &c in &counts {
            displs.push(count(total, "all_gather")?);
            total += c as usize;
        }
        let mut recv = vec![T::default(); total];
        self.run("all_gather", |lib, req| unsafe {
            (lib.iallgatherv)(
                send.as_ptr().cast(),
                mine[0],
                T::mpi_type(lib),
                recv.as_mut_ptr().cast(),
                counts.as_ptr(),
                displs.as_ptr(),
                T::mpi_type(lib),
                lib.comm_world,
                req,
            )
        })?;
        Ok((recv, counts.iter().map(|&c| c as usize).collect()))
    }

    fn broadcast_buf<T: Elem>(&self, buf: &mut [T], what: &str) -> Result<()> {
        let n = count(buf.len(), what)?;
        self.run(what, |lib, req| unsafe {
            (lib.ibcast)(
                buf.as_mut_ptr().cast::<c_void>(),
                n,
                T::mpi_type(lib),
                0,
                lib.comm_world,
                req,
            )
        })
    }

    /// Rank 0's bytes on every rank (the NCCL unique id); `buf` has the same length everywhere.
    pub fn broadcast_bytes(&self, buf: &mut [u8]) -> Result<()> {
        self.broadcast_buf(buf, "broadcast (bytes)")
    }
}
