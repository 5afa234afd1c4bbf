//! Gradient buckets all-reduced while backward runs (issue 16, item 5), on thread ranks (CPU)
//! and, with `cuda`, on NCCL ranks of the (emulated) GPU: the first bucket's all-reduce starts
//! before backward returns (the recorded order of events, not a timing), the step runs exactly
//! one gradient collective per bucket, and the weights after several LARS steps are bit-identical
//! to the all-reduce after backward.

use simclr::comm::{self, Comm, Communicator, PendingSum, ThreadGroup};
use simclr::nn::ActivationPolicy;
use simclr::optim::{Lars, LarsConfig};
use simclr::params::ParamStore;
use simclr::testing::fresh_seed;
use simclr::train::contrastive_step::{ContrastiveStep, GradSum};
use simclr::train::data_parallel::{Buckets, Event};
use simclr::{DType, Device, Result, Rng, Tensor};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const SIZE: usize = 16;
const PROJ: usize = 8;
/// Images per rank.
const N: usize = 2;
const STEPS: usize = 3;
/// Small enough that the tiny network fills several buckets.
const BUCKET_MB: f64 = 0.004;

/// A communicator that counts the all-reduces it forwards.
struct Counting {
    inner: Comm,
    all_reduces: AtomicUsize,
}

impl Communicator for Counting {
    fn rank(&self) -> usize {
        self.inner.rank()
    }
    fn world_size(&self) -> usize {
        self.inner.world_size()
    }
    fn all_reduce_sum(&self, ts: &[Tensor]) -> Result<Vec<Tensor>> {
        self.all_reduces.fetch_add(1, Ordering::SeqCst);
        self.inner.all_reduce_sum(ts)
    }
    fn all_reduce_sum_start(&self, ts: Vec<Tensor>) -> Result<Box<dyn PendingSum + '_>> {
        self.all_reduces.fetch_add(1, Ordering::SeqCst);
        self.inner.all_reduce_sum_start(ts)
    }
    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        self.inner.all_gather(t)
    }
    fn all_gather_same(&self, t: &Tensor) -> Result<Tensor> {
        self.inner.all_gather_same(t)
    }
    fn broadcast(&self, t: &Tensor) -> Result<Tensor> {
        self.inner.broadcast(t)
    }
    fn barrier(&self) -> Result<()> {
        self.inner.barrier()
    }
}

/// What one rank saw: per step the events and the number of all-reduces; the final weights.
struct RankRun {
    events: Vec<Vec<Event>>,
    all_reduces: Vec<usize>,
    weights: Vec<Vec<u64>>,
    buckets: usize,
}

/// STEPS LARS steps of rank `comm.rank()` on device `dev`, bucketed or not.
fn rank_run(comm: Comm, dev: Device, seed: u64, bucketed: bool) -> Result<RankRun> {
    let counting = Arc::new(Counting {
        inner: comm,
        all_reduces: AtomicUsize::new(0),
    });
    let comm: Comm = counting.clone();
    let (net, mut store) = simclr::testing::tiny_simclr_net(seed, DType::F32, SIZE, PROJ);
    store.to(dev, DType::F32)?;
    let buckets = Buckets::new(&store, BUCKET_MB)?;
    let mut opt = Lars::new(LarsConfig {
        weight_decay: 1e-4,
        ..LarsConfig::default()
    });
    let world = comm.world_size();
    let mut run = RankRun {
        events: Vec::new(),
        all_reduces: Vec::new(),
        weights: Vec::new(),
        buckets: buckets.len(),
    };
    for step in 0..STEPS {
        // The global batch of this step; this rank's view-a and view-b rows.
        let mut rng = Rng::derive(seed, 100 + step as u64);
        let x = Tensor::randn(&[2 * N * world, SIZE, SIZE, 3], 1.0, DType::F32, &mut rng)?;
        let r = comm.rank();
        let views = comm::concat_rows(&[
            comm::narrow_rows(&x, r * N, N)?,
            comm::narrow_rows(&x, (world + r) * N, N)?,
        ])?
        .to_device(dev)?;
        let before = counting.all_reduces.load(Ordering::SeqCst);
        let sum = match bucketed {
            true => GradSum::Buckets(&buckets),
            false => GradSum::AfterBackward,
        };
        let step = ContrastiveStep::new(0.2, ActivationPolicy::default());
        let step = step.comm(Some(&comm)).grad_sum(sum);
        let (_, ev) = step.run_traced(&net, &mut store, &views)?;
        run.all_reduces
            .push(counting.all_reduces.load(Ordering::SeqCst) - before);
        run.events.push(ev);
        opt.step(&mut store, 0.5)?;
        store.zero_grads();
    }
    for id in store.ids() {
        let v = store.value(id)?.to_device(Device::Cpu)?.to_vec_f64()?;
        run.weights.push(v.iter().map(|x| x.to_bits()).collect());
    }
    Ok(run)
}

/// The checks on the runs of every rank, bucketed and not.
fn check(what: &str, bucketed: &[RankRun], plain: &[RankRun]) {
    for (r, (b, p)) in bucketed.iter().zip(plain).enumerate() {
        assert!(b.buckets >= 3, "{what}: only {} buckets", b.buckets);
        for (step, ev) in b.events.iter().enumerate() {
            let at = |e: Event| ev.iter().position(|&x| x == e);
            let done = at(Event::BackwardDone).expect("a backward end");
            let starts: Vec<usize> = ev
                .iter()
                .filter_map(|e| match e {
                    Event::Started(i) => Some(*i),
                    _ => None,
                })
                .collect();
            let what = format!("{what}, rank {r}, step {step}: {ev:?}");
            assert_eq!(starts.len(), b.buckets, "{what}: one start per bucket");
            assert!(matches!(ev[0], Event::Started(_)), "{what}: a start first");
            // Overlap: every bucket but the one holding the first layers starts during backward.
            assert!(
                done >= b.buckets - 1,
                "{what}: starts before backward's end"
            );
            // One gradient all-reduce per bucket instead of one in all; sync BN's all-reduces
            // are the same in both.
            assert_eq!(
                b.all_reduces[step],
                p.all_reduces[step] - 1 + b.buckets,
                "{what}: collectives"
            );
        }
        assert!(p.events.iter().all(|e| e.is_empty()));
        eprintln!(
            "{what}, rank {r}: {} buckets; step 0 events {:?}; all-reduces per step {:?} \
             (after backward: {:?})",
            b.buckets, b.events[0], b.all_reduces, p.all_reduces
        );
        assert_eq!(b.weights, p.weights, "{what}, rank {r}: weights differ");
    }
}

#[test]
fn buckets_on_thread_ranks_overlap_backward_and_equal_the_reduce_after_it() {
    let seed = fresh_seed("buckets_threads");
    for world in [2, 3] {
        let run = |bucketed| {
            ThreadGroup::run(world, |comm| rank_run(comm, Device::Cpu, seed, bucketed)).unwrap()
        };
        check(&format!("{world} thread ranks"), &run(true), &run(false));
    }
}

#[cfg(feature = "cuda")]
#[test]
fn buckets_on_nccl_ranks_overlap_backward_and_equal_the_reduce_after_it() {
    if !simclr::cuda_available() {
        assert!(
            std::env::var("SIMCLR_REQUIRE_GPU").as_deref() != Ok("1"),
            "SIMCLR_REQUIRE_GPU=1 but no GPU: {}",
            simclr::cuda_unavailable_reason()
        );
        return;
    }
    let world = simclr::cuda::device_count().min(2);
    if world < 2 {
        println!("one CUDA device: NCCL ranks need several");
        return;
    }
    let seed = fresh_seed("buckets_nccl");
    let run = |bucketed| -> Vec<RankRun> {
        let comms = comm::Nccl::group(&(0..world).collect::<Vec<_>>()).unwrap();
        std::thread::scope(|s| {
            let hs: Vec<_> = comms
                .into_iter()
                .enumerate()
                .map(|(r, c)| {
                    s.spawn(move || rank_run(Arc::new(c), Device::Cuda(r), seed, bucketed).unwrap())
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        })
    };
    check(&format!("{world} NCCL ranks"), &run(true), &run(false));
}

#[test]
fn bad_bucket_sizes_are_configuration_errors() {
    let store = ParamStore::new(DType::F32, 1);
    for mb in [0.0, -1.0, f64::NAN] {
        let e = Buckets::new(&store, mb).unwrap_err().to_string();
        assert!(e.contains("--bucket-mb"), "{e}");
    }
}

/// On 2 MPI processes: this binary runs itself under `mpirun -np 2` (see tests/support/mpi.rs).
#[cfg(feature = "mpi")]
#[path = "support/mpi.rs"]
mod mpi_support;

#[cfg(feature = "mpi")]
#[test]
fn buckets_on_mpi_processes_overlap_backward_and_equal_the_reduce_after_it() {
    if !mpi_support::have_mpirun() {
        return;
    }
    let seed = fresh_seed("buckets_mpi").to_string();
    let text = mpi_support::run_ranks(2, "mpi_rank_body", &[("SIMCLR_TEST_SEED", seed)]);
    for r in 0..2 {
        assert!(
            text.contains(&format!("rank {r} of 2: buckets ok")),
            "{text}"
        );
    }
}

/// One rank of the MPI test (run only by it, under mpirun).
#[cfg(feature = "mpi")]
#[test]
#[ignore]
fn mpi_rank_body() {
    assert!(
        std::env::var("OMPI_COMM_WORLD_SIZE").is_ok(),
        "run by buckets_on_mpi_processes_… under mpirun"
    );
    let m = comm::mpi::world(std::time::Duration::from_secs(120)).unwrap();
    let seed: u64 = std::env::var("SIMCLR_TEST_SEED").unwrap().parse().unwrap();
    let comm: Comm = m.clone();
    let b = rank_run(comm.clone(), Device::Cpu, seed, true).unwrap();
    let p = rank_run(comm, Device::Cpu, seed, false).unwrap();
    let (r, w) = (m.rank(), m.world_size());
    check(&format!("MPI rank {r}"), &[b], &[p]);
    println!("rank {r} of {w}: buckets ok");
    comm::finish().unwrap();
}
