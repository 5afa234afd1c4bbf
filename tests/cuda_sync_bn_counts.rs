//! Synchronised batch norm on GPU ranks (NCCL, one thread per rank, as `--world-size` runs them;
//! the emulated device has four): a train-mode forward + backward, with the parameter gradients'
//! all-reduce, moves nothing to the host and never waits (the driver floor's exact counters),
//! and equals one process holding the global batch (the CPU reference). One test in this
//! binary, so no other test's traffic mixes into the global counters.
#![cfg(feature = "cuda")]

#[path = "cuda_common.rs"]
mod common;
use common::gpu;

use simclr::autograd::Tape;
use simclr::comm::{concat_rows, narrow_rows, Comm, Nccl};
use simclr::cuda::driver::{counters, Counters};
use simclr::nn::{BatchNorm, Ctx};
use simclr::params::{ParamKind, ParamStore};
use simclr::testing::{assert_close, fresh_seed, tolerance};
use simclr::{DType, Device, Rng, Tensor};
use std::sync::{Arc, Barrier, Mutex};

const C: usize = 6;
const HW: usize = 3;

#[derive(Clone, Copy, Debug)]
enum Act {
    Plain,
    Relu,
    AddRelu,
}

fn bn_store(seed: u64) -> (BatchNorm, ParamStore) {
    let mut store = ParamStore::new(DType::F32, seed);
    let bn = BatchNorm::new(&mut store, "bn", C, false, true).unwrap();
    let mut rng = Rng::derive(seed, 7);
    for id in store.ids().collect::<Vec<_>>() {
        let v: Vec<f64> = (0..C)
            .map(|_| match store.kind(id) {
                ParamKind::BnRunningVar => rng.range(0.5, 1.5),
                _ => rng.normal(),
            })
            .collect();
        let t = Tensor::from_f64(&v, &[C], DType::F32).unwrap();
        store.set_value(id, t).unwrap();
    }
    (bn, store)
}

/// [x, residual, w] of n images; x's channels have means far from zero against their spread.
fn inputs(seed: u64, n: usize) -> Vec<Tensor> {
    let mut rng = Rng::derive(seed, 1);
    let shape = [n, HW, HW, C];
    let x: Vec<f64> = (0..n * HW * HW * C)
        .map(|i| 2.0 + (i % C) as f64 + 0.5 * rng.normal())
        .collect();
    let mut t = vec![Tensor::from_f64(&x, &shape, DType::F32).unwrap()];
    t.push(Tensor::randn(&shape, 1.0, DType::F32, &mut rng).unwrap());
    t.push(Tensor::randn(&shape, 1.0, DType::F32, &mut rng).unwrap());
    t
}

/// Forward, then backward of Σ y·w; returns y, dx, dresidual, then dγ, dβ, running mean, running var (in store order).
fn forward_backward(
    bn: &BatchNorm,
    store: &mut ParamStore,
    act: Act,
    ins: &[Tensor],
    comm: Option<&Comm>,
) -> Vec<Tensor> {
    let mut tape = Tape::new();
    let (x, r) = (tape.leaf(ins[0].clone()), tape.leaf(ins[1].clone()));
    let y = {
        let mut ctx = Ctx::new(&mut tape, store, true);
        if let Some(c) = comm {
            ctx = ctx.with_comm(c.clone());
        }
        match act {
            Act::Plain => bn.forward(&mut ctx, &x),
            Act::Relu => bn.forward_relu(&mut ctx, &x),
            Act::AddRelu => bn.forward_add_relu(&mut ctx, &x, &r),
        }
        .unwrap()
    };
    // The loss Σ y·w, seeded directly with dL/dy = w (a scalar loss's backward reads its
    // seed on the host).
    let grads = tape.backward_from(&[(&y, ins[2].clone())], store).unwrap();
    if let Some(c) = comm {
        simclr::train::data_parallel::all_reduce_grads(c.as_ref(), store).unwrap();
    }
    let mut out = vec![y.value().clone(), grads.get(&x).unwrap().clone()];
    out.push(match act {
        Act::AddRelu => grads.get(&r).unwrap().clone(),
        _ => ins[1].clone(),
    });
    for id in store.ids().collect::<Vec<_>>() {
        out.push(match store.grad(id) {
            Some(g) if store.is_trainable(id) => g.clone(),
            _ => store.value(id).unwrap().clone(),
        });
    }
    out
}

#[test]
fn sync_bn_on_gpu_ranks_never_reaches_the_host_and_equals_one_process() {
    let Some(_) = gpu() else { return };
    let world = simclr::cuda::device_count().min(3);
    if world < 2 {
        println!("only {world} CUDA device: several NCCL ranks need several devices");
        return;
    }
    let split: Vec<usize> = [2, 1, 3][..world].to_vec();
    let n: usize = split.iter().sum();
    let seed = fresh_seed("sync_bn_counts");
    let ins = inputs(seed, n);
    let comms: Vec<Comm> = Nccl::group(&(0..world).collect::<Vec<_>>())
        .expect("ncclCommInitAll")
        .into_iter()
        .map(|c| Arc::new(c) as Comm)
        .collect();
    for act in [Act::Plain, Act::Relu, Act::AddRelu] {
        let (bn, mut store) = bn_store(seed);
        let want = forward_backward(&bn, &mut store, act, &ins, None);
        let gate = Barrier::new(world);
        let window: Mutex<(Counters, Counters)> = Mutex::default();
        let got: Vec<Vec<Tensor>> = std::thread::scope(|s| {
            let handles: Vec<_> = comms
                .iter()
                .map(|comm| {
                    let (gate, window, split, ins, bn) = (&gate, &window, &split, &ins, &bn);
                    s.spawn(move || {
                        let r = comm.rank();
                        let dev = Device::Cuda(r);
                        let start: usize = split[..r].iter().sum();
                        let mine: Vec<Tensor> = ins
                            .iter()
                            .map(|t| {
                                narrow_rows(t, start, split[r])
                                    .unwrap()
                                    .to_device(dev)
                                    .unwrap()
                            })
                            .collect();
                        let (_, mut store) = bn_store(seed);
                        store.to(dev, DType::F32).unwrap();
                        // Everything is on the device; the window holds only the step.
                        comm.barrier().unwrap();
                        gate.wait();
                        if r == 0 {
                            window.lock().unwrap().0 = counters();
                        }
                        gate.wait();
                        let out = forward_backward(bn, &mut store, act, &mine, Some(comm));
                        gate.wait();
                        if r == 0 {
                            window.lock().unwrap().1 = counters();
                        }
                        gate.wait();
                        out.iter()
                            .map(|t| t.to_device(Device::Cpu).unwrap())
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let (before, after) = *window.lock().unwrap();
        let c = after.since(&before);
        println!("{act:?}, {world} ranks, forward + backward + gradient all-reduce: {c:?}");
        let what = format!("{act:?} on {world} ranks: {c:?}");
        assert_eq!(c.downloads, 0, "{what}");
        assert_eq!(c.synchronizations, 0, "{what}");
        assert!(c.launches > 0 && c.library_calls > 0, "{what}");
        // Against one process: the rows of every rank's y, dx, dresidual; the reduced
        // parameter gradients and running statistics on every rank.
        let m = n * HW * HW;
        let tol = tolerance(DType::F32, m, 4) * 8.0;
        for (i, name) in ["y", "dx", "dresidual"].iter().enumerate() {
            let cat = concat_rows(&got.iter().map(|o| o[i].clone()).collect::<Vec<_>>()).unwrap();
            assert_close(&format!("{act:?} {name}"), &cat, &want[i], tol);
        }
        for (rank, o) in got.iter().enumerate() {
            for (i, w) in want.iter().enumerate().skip(3) {
                assert_close(
                    &format!("{act:?} rank {rank} store #{}", i - 3),
                    &o[i],
                    w,
                    tol,
                );
            }
        }
    }
}
