//! Data parallelism on threads against one process holding the whole batch: synchronised batch
//! norm (outputs, running statistics, every gradient) and a full contrastive pretraining step
//! on a small SK-ResNet (loss, summed gradients, LARS-updated parameters); a world of one is
//! bit-identical to the plain step.

use simclr::autograd::Tape;
use simclr::comm::{self, concat_rows, narrow_rows, Comm, ThreadGroup};
use simclr::nn::{ActivationPolicy, BatchNorm, Ctx};
use simclr::ops;
use simclr::optim::{Lars, LarsConfig};
use simclr::params::{ParamKind, ParamStore};
use simclr::testing::{assert_close, fresh_seed, relative_error, tolerance};
use simclr::train::contrastive_step::ContrastiveStep;
use simclr::train::data_parallel::{all_reduce_grads, shard as rank_shard, ThreadReplicas};
use simclr::train::model::SimClrNet;
use simclr::train::{pretrain, Config, Env};
use simclr::{DType, Rng, Tensor};
use std::sync::Arc;

// ---------------------------------------------------------------- synchronised batch norm

#[derive(Clone, Copy, Debug)]
enum Act {
    Plain,
    NoBeta,
    Relu,
    AddRelu,
}

const C: usize = 5;
const HW: [usize; 2] = [2, 3];

/// Rows [start, start + n) of each tensor.
fn rows(ts: &[Tensor], start: usize, n: usize) -> Vec<Tensor> {
    ts.iter()
        .map(|t| narrow_rows(t, start, n).unwrap())
        .collect()
}

/// What one rank (or the single process) computes: y, dx, dresidual, and the store (running
/// statistics, dgamma, dbeta).
struct BnOut {
    y: Tensor,
    dx: Tensor,
    dres: Option<Tensor>,
    store: ParamStore,
}

fn bn_store(seed: u64, dtype: DType, act: Act) -> (BatchNorm, ParamStore) {
    let mut store = ParamStore::new(dtype, seed);
    let bn = BatchNorm::new(&mut store, "bn", C, false, !matches!(act, Act::NoBeta)).unwrap();
    let mut rng = Rng::derive(seed, 7);
    for id in store.ids().collect::<Vec<_>>() {
        let v: Vec<f64> = (0..C)
            .map(|_| match store.kind(id) {
                ParamKind::BnRunningVar => rng.range(0.5, 1.5),
                _ => rng.normal(),
            })
            .collect();
        store
            .set_value(id, Tensor::from_f64(&v, &[C], dtype).unwrap())
            .unwrap();
    }
    (bn, store)
}

/// Forward in train mode, loss Σ y·w, backward. `ins` = [x, residual, w].
fn bn_run(seed: u64, dtype: DType, act: Act, ins: &[Tensor], comm: Option<Comm>) -> BnOut {
    let (bn, mut store) = bn_store(seed, dtype, act);
    let mut tape = Tape::new();
    let (x, r) = (tape.leaf(ins[0].clone()), tape.leaf(ins[1].clone()));
    let w = tape.constant(ins[2].clone());
    let y = {
        let mut ctx = Ctx::new(&mut tape, &mut store, true);
        if let Some(c) = comm {
            ctx = ctx.with_comm(c);
        }
        match act {
            Act::Plain | Act::NoBeta => bn.forward(&mut ctx, &x),
            Act::Relu => bn.forward_relu(&mut ctx, &x),
            Act::AddRelu => bn.forward_add_relu(&mut ctx, &x, &r),
        }
        .unwrap()
    };
    let p = ops::mul(&mut tape, &y, &w).unwrap();
    let loss = ops::sum(&mut tape, &p).unwrap();
    let grads = tape.backward(&loss, &mut store).unwrap();
    BnOut {
        y: y.value().clone(),
        dx: grads.get(&x).unwrap().clone(),
        dres: grads.get(&r).cloned(),
        store,
    }
}

/// Inputs whose channels have a mean far from zero against their spread, so a combination of
/// the statistics through sums of squares would show.
fn bn_inputs(seed: u64, n: usize, dtype: DType) -> Vec<Tensor> {
    let mut rng = Rng::derive(seed, 1);
    let shape = [n, HW[0], HW[1], C];
    let x: Vec<f64> = (0..n * HW[0] * HW[1] * C)
        .map(|i| 3.0 + (i % C) as f64 + 0.5 * rng.normal())
        .collect();
    let mut t = vec![Tensor::from_f64(&x, &shape, dtype).unwrap()];
    t.push(Tensor::randn(&shape, 1.0, dtype, &mut rng).unwrap());
    t.push(Tensor::randn(&shape, 1.0, dtype, &mut rng).unwrap());
    t
}

fn sync_bn_matches_one_process(world: usize, split: &[usize], dtype: DType) {
    let seed = fresh_seed(&format!("sync_bn_{world}_{}", dtype.name()));
    let n: usize = split.iter().sum();
    let ins = bn_inputs(seed, n, dtype);
    let m = n * HW[0] * HW[1];
    // Longest reduction: the M rows of the statistics and of Σdy, Σdy·x̂; the chain is
    // statistics → normalisation → loss → backward sums → dx. x − mean loses the digits of
    // |x| beyond the spread σ, so rounding errors grow by κ = max|x| / min σ.
    let kappa = {
        let v = ins[0].to_vec_f64().unwrap();
        let max = v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        let sd = |j: usize| {
            let col: Vec<f64> = v.iter().skip(j).step_by(C).copied().collect();
            let mean = col.iter().sum::<f64>() / col.len() as f64;
            (col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / col.len() as f64).sqrt()
        };
        max / (0..C).map(sd).fold(f64::MAX, f64::min)
    };
    let tol = tolerance(dtype, m, 4) * kappa;
    for act in [Act::Plain, Act::NoBeta, Act::Relu, Act::AddRelu] {
        let want = bn_run(seed, dtype, act, &ins, None);
        let got = ThreadGroup::run(world, |comm| {
            let r = comm.rank();
            let start: usize = split[..r].iter().sum();
            let mine = rows(&ins, start, split[r]);
            let mut out = bn_run(seed, dtype, act, &mine, Some(comm.clone()));
            all_reduce_grads(comm.as_ref(), &mut out.store)?;
            Ok(out)
        })
        .unwrap();
        let what = |s: &str| format!("{act:?}, {world} ranks, {}: {s}", dtype.name());
        let cat = |f: &dyn Fn(&BnOut) -> Tensor| {
            concat_rows(&got.iter().map(f).collect::<Vec<_>>()).unwrap()
        };
        assert_close(&what("y"), &cat(&|o| o.y.clone()), &want.y, tol);
        assert_close(&what("dx"), &cat(&|o| o.dx.clone()), &want.dx, tol);
        if let Act::AddRelu = act {
            let dres = cat(&|o| o.dres.clone().unwrap());
            assert_close(&what("dresidual"), &dres, want.dres.as_ref().unwrap(), tol);
        }
        for o in &got {
            for id in want.store.ids() {
                let name = want.store.name(id);
                let (g, w) = if want.store.is_trainable(id) {
                    (o.store.grad(id).unwrap(), want.store.grad(id).unwrap())
                } else {
                    (o.store.value(id).unwrap(), want.store.value(id).unwrap())
                };
                assert_close(&what(name), g, w, tol);
            }
        }
    }
}

#[test]
fn sync_bn_on_two_ranks_equals_one_process() {
    sync_bn_matches_one_process(2, &[3, 3], DType::F64);
    sync_bn_matches_one_process(2, &[2, 4], DType::F32);
}

#[test]
fn sync_bn_on_three_uneven_ranks_equals_one_process() {
    sync_bn_matches_one_process(3, &[2, 1, 3], DType::F64);
    sync_bn_matches_one_process(3, &[1, 3, 2], DType::F32);
}

// ---------------------------------------------------------------- a whole pretraining step

const B: usize = 4;
const SIZE: usize = 16;
const PROJ_DIM: usize = 16;
const TAU: f64 = 0.5;
const LR: f64 = 0.3;
// Tolerance: the longest reductions are the weight gradients of the full-resolution convs over
// 2B·16·16 = 2048 positions (split across ranks, then summed); the longest chain is about 40
// layers (stem, four SK bottleneck blocks, the head, normalisation, the loss), plus the LARS
// update.
const K: usize = 2048;
const DEPTH: usize = 42;

/// A small SK-ResNet with a 2-layer head whose every tensor is random (a fresh net has zero
/// gammas at the block ends, which would hide the residual branches' gradients).
fn net(seed: u64, dtype: DType) -> (SimClrNet, ParamStore) {
    simclr::testing::tiny_simclr_net(seed, dtype, SIZE, PROJ_DIM)
}

/// [2B, H, W, 3]: the B view-a images, then their B view-b images.
fn views(seed: u64, dtype: DType) -> Tensor {
    Tensor::randn(
        &[2 * B, SIZE, SIZE, 3],
        1.0,
        dtype,
        &mut Rng::derive(seed, 2),
    )
    .unwrap()
}

fn queue(seed: u64, dtype: DType) -> Tensor {
    let q = Tensor::randn(&[5, PROJ_DIM], 1.0, dtype, &mut Rng::derive(seed, 3)).unwrap();
    ops::normalize::l2_normalize_forward(&q).unwrap()
}

/// Rank r's shard of the views: its images' view-a rows, then their view-b rows.
fn shard(x: &Tensor, start: usize, n: usize) -> Tensor {
    concat_rows(&[
        narrow_rows(x, start, n).unwrap(),
        narrow_rows(x, B + start, n).unwrap(),
    ])
    .unwrap()
}

/// The single-process step as the trainer wrote it before data parallelism: one tape.
fn plain_step(net: &SimClrNet, store: &mut ParamStore, x: &Tensor, q: &Tensor) -> (f64, f64) {
    let mut tape = Tape::new();
    let xv = tape.constant(x.clone());
    let z = net
        .project(&mut Ctx::new(&mut tape, store, true), &xv)
        .unwrap();
    let zn = ops::l2_normalize(&mut tape, &z).unwrap();
    let loss = ops::ntxent::ntxent(&mut tape, &zn, Some(q), TAU).unwrap();
    let acc = ops::ntxent::ntxent_accuracy(zn.value(), Some(q)).unwrap();
    let v = loss.value().item().unwrap();
    tape.backward(&loss, store).unwrap();
    (v, acc)
}

/// Activations in the parameters' dtype, all kept.
fn plain() -> ActivationPolicy {
    ActivationPolicy::default()
}

fn lars() -> Lars {
    Lars::new(LarsConfig {
        weight_decay: 1e-4,
        ..LarsConfig::default()
    })
}

/// (name, gradient or buffer) of every tensor a step changes, then the parameters after LARS.
type Snapshot = (Vec<(String, Tensor)>, Vec<(String, Tensor)>);

fn snapshot(store: &mut ParamStore) -> Snapshot {
    let mut grads = Vec::new();
    for id in store.ids() {
        let name = store.name(id).to_string();
        if store.is_trainable(id) {
            let g = store
                .grad(id)
                .unwrap_or_else(|| panic!("no gradient for {name}"));
            grads.push((name, g.clone()));
        } else {
            grads.push((name, store.value(id).unwrap().clone()));
        }
    }
    lars().step(store, LR).unwrap();
    let params = store
        .ids()
        .map(|id| (store.name(id).to_string(), store.value(id).unwrap().clone()))
        .collect();
    (grads, params)
}

fn compare(what: &str, got: &[(String, Tensor)], want: &[(String, Tensor)], tol: f64) {
    let mut worst = 0.0f64;
    for ((name, g), (_, w)) in got.iter().zip(want) {
        let wv = w.to_vec_f64().unwrap();
        assert!(
            wv.iter().any(|&v| v != 0.0),
            "{what}: the reference of {name} is zero (a vacuous comparison)"
        );
        assert_close(&format!("{what}: {name}"), g, w, tol);
        worst = worst.max(relative_error(&g.to_vec_f64().unwrap(), &wv));
    }
    eprintln!("{what}: max relative difference {worst:.3e} (tolerance {tol:.3e})");
}

fn bits(s: &[(String, Tensor)]) -> Vec<Vec<u64>> {
    s.iter()
        .map(|(_, t)| {
            t.to_vec_f64()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        })
        .collect()
}

fn data_parallel_step_matches(split: &[usize], dtype: DType) {
    let world = split.len();
    let seed = fresh_seed(&format!("dp_step_{world}_{}", dtype.name()));
    let (x, q) = (views(seed, dtype), queue(seed, dtype));
    let (net, mut store) = self::net(seed, dtype);
    let (loss, acc) = plain_step(&net, &mut store, &x, &q);
    let want = snapshot(&mut store);

    let got = ThreadGroup::run(world, |comm| {
        let r = comm.rank();
        let start: usize = split[..r].iter().sum();
        let (net, mut store) = self::net(seed, dtype);
        let out = rank_step(
            &comm,
            &net,
            &mut store,
            &shard(&x, start, split[r]),
            TAU,
            Some(&q),
            plain(),
        )?;
        Ok((out, snapshot(&mut store)))
    })
    .unwrap();
    let tol = tolerance(dtype, K, DEPTH);
    let what = format!("{world} ranks {split:?}, {}", dtype.name());
    for (r, (out, (grads, params))) in got.iter().enumerate() {
        assert!(
            (out.loss - loss).abs() <= tol * loss.abs(),
            "{what}: rank {r} loss {} vs {loss}",
            out.loss
        );
        assert_eq!(out.accuracy, acc, "{what}: rank {r} contrastive accuracy");
        compare(&format!("{what}, rank {r}, gradients"), grads, &want.0, tol);
        compare(
            &format!("{what}, rank {r}, after LARS"),
            params,
            &want.1,
            tol,
        );
        // The replicas stay identical, bit for bit.
        assert_eq!(
            bits(params),
            bits(&got[0].1 .1),
            "{what}: rank {r} diverged"
        );
    }
}

#[test]
fn two_ranks_with_half_the_batch_each_take_the_step_of_one_process() {
    data_parallel_step_matches(&[2, 2], DType::F64);
}

/// f64: in f32 a random network of this size is ill-conditioned enough for some seeds that
/// rounding alone moves one process's gradients by 1e-2 (against f64), or flips a ReLU mask,
/// so an f32 comparison would test the seed, not the data parallelism (the f32 paths are
/// covered by the batch-norm tests and by the trainer test).
#[test]
fn three_uneven_ranks_take_the_step_of_one_process() {
    data_parallel_step_matches(&[1, 2, 1], DType::F64);
}

#[test]
fn a_world_of_one_is_bit_identical_to_the_plain_step() {
    let seed = fresh_seed("dp_world_of_one");
    let dtype = DType::F32;
    let (x, q) = (views(seed, dtype), queue(seed, dtype));
    let (net, mut store) = self::net(seed, dtype);
    let (loss, acc) = plain_step(&net, &mut store, &x, &q);
    let want = snapshot(&mut store);
    let comms: [Comm; 2] = [
        comm::single(),
        Arc::new(ThreadGroup::new(1).unwrap().pop().unwrap()),
    ];
    for comm in comms {
        // Recomputing BN + ReLU outputs leaves the step bit-identical too.
        for recompute in [false, true] {
            let policy = ActivationPolicy {
                recompute,
                ..plain()
            };
            let (net, mut store) = self::net(seed, dtype);
            let out = rank_step(&comm, &net, &mut store, &x, TAU, Some(&q), policy).unwrap();
            assert_eq!((out.loss, out.accuracy), (loss, acc));
            let got = snapshot(&mut store);
            assert_eq!(bits(&got.0), bits(&want.0), "gradients and buffers");
            assert_eq!(bits(&got.1), bits(&want.1), "parameters after LARS");
        }
    }
}

#[test]
fn recomputation_leaves_a_data_parallel_step_bit_identical() {
    let seed = fresh_seed("dp_recompute");
    let dtype = DType::F32;
    let (x, q) = (views(seed, dtype), queue(seed, dtype));
    let run = |recompute: bool| {
        ThreadGroup::run(2, |comm| {
            let (net, mut store) = self::net(seed, dtype);
            let policy = ActivationPolicy {
                recompute,
                ..plain()
            };
            let x = rank_shard(&x, comm.rank(), 2)?;
            let out = rank_step(&comm, &net, &mut store, &x, TAU, Some(&q), policy)?;
            Ok((out, snapshot(&mut store)))
        })
        .unwrap()
    };
    for ((a, sa), (b, sb)) in run(false).iter().zip(&run(true)) {
        assert_eq!(a, b);
        assert_eq!(bits(&sa.0), bits(&sb.0), "gradients and buffers");
        assert_eq!(bits(&sa.1), bits(&sb.1), "parameters after LARS");
    }
}

/// The trainer's replicas over several steps: rank 0 carries LARS momentum from a first
/// single-process step, the replicas copy it, and each step's parameters stay those of one
/// process (f64, so the comparison is tight).
#[test]
fn thread_replicas_follow_one_process_over_several_steps() {
    let seed = fresh_seed("dp_replicas");
    let dtype = DType::F64;
    let q = queue(seed, dtype);
    let batches: Vec<Tensor> = (0..3).map(|k| views(seed + k, dtype)).collect();
    let (net, mut want) = self::net(seed, dtype);
    let mut opt_want = lars();
    let (net_got, mut got) = self::net(seed, dtype);
    let mut opt_got = lars();
    plain_step(&net, &mut want, &batches[0], &q);
    opt_want.step(&mut want, LR).unwrap();
    plain_step(&net_got, &mut got, &batches[0], &q);
    opt_got.step(&mut got, LR).unwrap();
    let mut replicas =
        ThreadReplicas::new(3, &got, &opt_got, || Ok((self::net(seed, dtype).1, lars()))).unwrap();
    for (k, x) in batches.iter().enumerate().skip(1) {
        let (loss, _) = plain_step(&net, &mut want, x, &q);
        opt_want.step(&mut want, LR).unwrap();
        let (loss_got, accuracy) = replicas
            .step(&net_got, &mut got, x, TAU, Some(&q), LR, plain())
            .unwrap();
        let out = Out {
            loss: loss_got,
            accuracy,
        };
        opt_got.step(&mut got, LR).unwrap();
        let tol = k as f64 * tolerance(dtype, K, DEPTH);
        assert!(
            (out.loss - loss).abs() <= tol * loss.abs(),
            "step {k}: loss {} vs {loss}",
            out.loss
        );
        let values = |s: &ParamStore| -> Vec<(String, Tensor)> {
            s.ids()
                .map(|id| (s.name(id).to_string(), s.value(id).unwrap().clone()))
                .collect()
        };
        compare(
            &format!("after step {k}"),
            &values(&got),
            &values(&want),
            tol,
        );
    }
}

#[test]
fn shards_are_disjoint_and_cover_the_batch() {
    let x = views(fresh_seed("dp_shards"), DType::F64);
    for world in 1..=B {
        let shards: Vec<Tensor> = (0..world)
            .map(|r| rank_shard(&x, r, world).unwrap())
            .collect();
        let n: Vec<usize> = shards.iter().map(|s| s.shape()[0] / 2).collect();
        assert_eq!(n.iter().sum::<usize>(), B);
        assert!(
            n.iter().max().unwrap() - n.iter().min().unwrap() <= 1,
            "{n:?}"
        );
        let part = |v: usize| {
            let p: Vec<Tensor> = shards
                .iter()
                .zip(&n)
                .map(|(s, &k)| narrow_rows(s, v * k, k).unwrap())
                .collect();
            concat_rows(&p).unwrap()
        };
        let rebuilt = concat_rows(&[part(0), part(1)]).unwrap();
        assert_close(&format!("{world} shards"), &rebuilt, &x, 0.0);
    }
    assert!(rank_shard(&x, 0, B + 1).is_err());
}

// ---------------------------------------------------------------- the trainer

fn scratch(name: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!("simclr-dp-{}-{nanos}-{name}", std::process::id()))
}

/// 48 synthetic 32-px images, a quarter-width ResNet-18, batches of 16, a memory queue.
fn tiny_run(out: &std::path::Path, world: usize) -> Config {
    let mut c = Config {
        model: "r18_0.25x_sk1".into(),
        image_size: Some(32),
        out: out.to_path_buf(),
        synthetic_train: 48,
        synthetic_test: 20,
        device: "cpu".into(),
        log_every: 1,
        ..Config::default()
    };
    c.pretrain.epochs = 2;
    c.pretrain.batch_size = 16;
    c.pretrain.queue_size = 40;
    c.pretrain.world_size = world;
    // Small steps: at the default rate the f32 rounding differences of the two runs grow about
    // tenfold per step (measured), which says nothing about the data parallelism.
    c.pretrain.lr = 0.003;
    c
}

fn weights(path: &std::path::Path) -> Vec<(String, Tensor)> {
    let bytes = std::fs::read(path).unwrap();
    let mut v: Vec<_> = simclr::checkpoint::read_tensors(&bytes, path)
        .unwrap()
        .into_iter()
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn the_trainer_with_three_thread_ranks_follows_the_single_process_run() {
    let (one, three) = (scratch("one"), scratch("three"));
    pretrain::run(&mut Env::open(tiny_run(&one, 1), false).unwrap()).unwrap();
    pretrain::run(&mut Env::open(tiny_run(&three, 3), false).unwrap()).unwrap();
    let (want, got) = (
        weights(&one.join("pretrain.safetensors")),
        weights(&three.join("pretrain.safetensors")),
    );
    assert_eq!(want.len(), got.len());
    // 6 steps in f32, each within tolerance(F32, K, DEPTH) of the other run's; their errors
    // add up over the steps. Compared norm-wise over the whole model (a bias that moved only
    // 1e-7 away from zero would otherwise be judged by its own rounding noise).
    let tol = 6.0 * tolerance(DType::F32, K, DEPTH);
    let flat = |v: &[(String, Tensor)]| -> Vec<f64> {
        v.iter()
            .flat_map(|(_, t)| t.to_vec_f64().unwrap())
            .collect()
    };
    let err = relative_error(&flat(&got), &flat(&want));
    eprintln!("3 ranks vs 1 after 6 steps: relative difference {err:.3e} (tolerance {tol:.3e})");
    assert!(err <= tol, "weights: relative difference {err:e} > {tol:e}");
    let losses = |dir: &std::path::Path| -> Vec<f64> {
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            // Step lines only (the kNN monitor's lines carry no loss).
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64())
            .collect()
    };
    let (lw, lg) = (losses(&one), losses(&three));
    assert_eq!(lw.len(), 6);
    for (step, (w, g)) in lw.iter().zip(&lg).enumerate() {
        assert!(
            (w - g).abs() <= tol * w.abs(),
            "step {step}: loss {g} vs {w}"
        );
    }
    eprintln!("losses: one process {lw:?}, three ranks {lg:?}");

    // Resumed after one epoch: the same weights as the uninterrupted 3-rank run, bit for bit.
    let resumed = scratch("resumed");
    let mut env = Env::open(tiny_run(&resumed, 3), false).unwrap();
    env.stop_after_epochs = Some(1);
    pretrain::run(&mut env).unwrap();
    pretrain::run(&mut Env::open(tiny_run(&resumed, 3), true).unwrap()).unwrap();
    for ((name, a), (_, b)) in got
        .iter()
        .zip(&weights(&resumed.join("pretrain.safetensors")))
    {
        assert_eq!(
            bits(&[(name.clone(), a.clone())]),
            bits(&[(name.clone(), b.clone())]),
            "{name} after resume"
        );
    }
    for d in [one, three, resumed] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn bad_world_sizes_are_configuration_errors() {
    let dir = scratch("bad");
    for (world, micro) in [(0, None), (17, None), (2, Some(4))] {
        let mut c = tiny_run(&dir, world);
        c.pretrain.micro_batch = micro;
        let e = Env::open(c, false).err().unwrap().to_string();
        assert!(e.contains("world_size"), "{e}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// User + system CPU seconds of this process so far (Linux; clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<f64>() / 100.0
}

/// Not a correctness test: one step of one process on `n` images against two thread ranks on
/// n/2 each, same total batch, best of several interleaved rounds (wall and CPU time per step):
/// `SIMCLR_DP_IMAGES=16 cargo test --test data_parallel time_two -- --ignored --nocapture`.
#[test]
#[ignore]
fn time_two_thread_ranks_against_one_process() {
    let dtype = DType::F32;
    let seed = 1;
    let n: usize = std::env::var("SIMCLR_DP_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let x = Tensor::randn(
        &[2 * n, SIZE, SIZE, 3],
        1.0,
        dtype,
        &mut Rng::derive(seed, 2),
    )
    .unwrap();
    let reps = 3;
    // (wall, cpu) seconds per step after one warm-up step; ranks start after a barrier.
    let steps = |comm: &Comm, x: &Tensor| -> simclr::Result<(f64, f64)> {
        let (net, mut store) = self::net(seed, dtype);
        rank_step(comm, &net, &mut store, x, TAU, None, plain())?;
        comm.barrier()?;
        let (t, c) = (std::time::Instant::now(), cpu_seconds());
        for _ in 0..reps {
            rank_step(comm, &net, &mut store, x, TAU, None, plain())?;
        }
        comm.barrier()?;
        let r = reps as f64;
        Ok((t.elapsed().as_secs_f64() / r, (cpu_seconds() - c) / r))
    };
    let (mut one, mut two) = ((f64::MAX, 0.0), (f64::MAX, 0.0));
    for _ in 0..3 {
        let o = steps(&comm::single(), &x).unwrap();
        let t =
            ThreadGroup::run(2, |comm| steps(&comm, &rank_shard(&x, comm.rank(), 2)?)).unwrap()[0];
        if o.0 < one.0 {
            one = o;
        }
        if t.0 < two.0 {
            two = t;
        }
    }
    eprintln!(
        "step on {n} images of {SIZE} px, tiny SK-ResNet, f32, {} threads: one process {:.1} ms wall / {:.1} ms CPU, two thread ranks {:.1} ms wall / {:.1} ms CPU (wall ratio {:.2})",
        rayon::current_num_threads(),
        one.0 * 1e3,
        one.1 * 1e3,
        two.0 * 1e3,
        two.1 * 1e3,
        two.0 / one.0
    );
}

/// One rank's step, read back.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Out {
    loss: f64,
    accuracy: f64,
}

fn rank_step(
    comm: &Comm,
    net: &SimClrNet,
    store: &mut ParamStore,
    x: &Tensor,
    tau: f64,
    queue: Option<&Tensor>,
    policy: ActivationPolicy,
) -> simclr::Result<Out> {
    let step = ContrastiveStep::new(tau, policy)
        .queue(queue)
        .comm(Some(comm));
    let (loss, accuracy) = step.run(net, store, x)?.read()?;
    Ok(Out { loss, accuracy })
}
