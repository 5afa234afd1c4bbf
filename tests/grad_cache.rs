//! Gradient caching against the plain one-tape contrastive step, on the CPU in f64: with BN in
//! eval mode the parameter gradients must match for any micro-batch size; in train mode a single
//! micro-batch must reproduce the plain step, running statistics included.

use simclr::autograd::Tape;
use simclr::nn::{ActivationPolicy, Ctx};
use simclr::ops;
use simclr::params::ParamStore;
use simclr::testing::{assert_close, fresh_seed, relative_error, tolerance};
use simclr::train::grad_cache::{concat_rows, contrastive_step_cached, split_rows};
use simclr::train::model::SimClrNet;
use simclr::{DType, Rng, Tensor};

const B: usize = 4;
const SIZE: usize = 16;
const PROJ_DIM: usize = 16;
const TAU: f64 = 0.5;

// Tolerance: the longest reductions are the weight gradients of the full-resolution convs, over
// 2B·16·16 = 2048 positions (micro-batching only regroups these sums); the longest chain is
// about 40 layers deep (stem, four SK bottleneck blocks, the head, normalisation, the loss).
const K: usize = 2048;
const DEPTH: usize = 40;

fn recompute(on: bool) -> ActivationPolicy {
    ActivationPolicy {
        compute: None,
        recompute: on,
    }
}

/// A small SK-ResNet with a 2-layer head whose every tensor is random (a fresh net has zero
/// gammas at the block ends, which would hide the residual branches' gradients).
fn net(seed: u64) -> (SimClrNet, ParamStore) {
    simclr::testing::tiny_simclr_net(seed, DType::F64, SIZE, PROJ_DIM)
}

fn views(seed: u64) -> Tensor {
    Tensor::randn(
        &[2 * B, SIZE, SIZE, 3],
        1.0,
        DType::F64,
        &mut Rng::derive(seed, 2),
    )
    .unwrap()
}

fn queue(seed: u64) -> Tensor {
    let q = Tensor::randn(&[5, PROJ_DIM], 1.0, DType::F64, &mut Rng::derive(seed, 3)).unwrap();
    ops::normalize::l2_normalize_forward(&q).unwrap()
}

/// The plain step: everything on one tape.
fn plain_step(
    net: &SimClrNet,
    store: &mut ParamStore,
    x: &Tensor,
    q: Option<&Tensor>,
    train: bool,
) -> f64 {
    let mut tape = Tape::new();
    let xv = tape.constant(x.clone());
    let z = net
        .project(&mut Ctx::new(&mut tape, store, train), &xv)
        .unwrap();
    let zn = ops::l2_normalize(&mut tape, &z).unwrap();
    let loss = ops::ntxent::ntxent(&mut tape, &zn, q, TAU).unwrap();
    let v = loss.value().item().unwrap();
    tape.backward(&loss, store).unwrap();
    v
}

/// Compares every gradient and buffer of `got` with `want`; returns the largest relative error.
fn compare(what: &str, got: &ParamStore, want: &ParamStore, tol: f64) -> f64 {
    let mut worst = 0.0f64;
    for id in want.ids() {
        let name = want.name(id);
        let (g, w) = if want.is_trainable(id) {
            let none = || panic!("{what}: no gradient for {name}");
            (
                got.grad(id).unwrap_or_else(none),
                want.grad(id).unwrap_or_else(none),
            )
        } else {
            (got.value(id).unwrap(), want.value(id).unwrap())
        };
        if want.is_trainable(id) {
            // Guards against a vacuous comparison of zero gradients.
            let nonzero = w.to_vec_f64().unwrap().iter().any(|&v| v != 0.0);
            assert!(nonzero, "{what}: the reference gradient of {name} is zero");
        }
        assert_close(&format!("{what}: {name}"), g, w, tol);
        let err = relative_error(&g.to_vec_f64().unwrap(), &w.to_vec_f64().unwrap());
        worst = worst.max(err);
    }
    eprintln!("{what}: max relative difference {worst:.3e} (tolerance {tol:.3e})");
    worst
}

fn eval_mode_matches(with_queue: bool) {
    let seed = fresh_seed(if with_queue {
        "grad_cache_eval_queue"
    } else {
        "grad_cache_eval"
    });
    let x = views(seed);
    let q = with_queue.then(|| queue(seed));
    let (net, mut want) = self::net(seed);
    let loss_want = plain_step(&net, &mut want, &x, q.as_ref(), false);
    let tol = tolerance(DType::F64, K, DEPTH);
    for micro in [2, 3, 2 * B] {
        let (net, mut got) = self::net(seed);
        let (loss, acc) = contrastive_step_cached(
            None,
            &net,
            &mut got,
            &x,
            micro,
            TAU,
            q.as_ref(),
            false,
            recompute(micro % 2 == 1),
        )
        .and_then(|s| s.read())
        .unwrap();
        let what = format!("eval BN, queue {with_queue}, micro {micro}");
        assert!(
            (loss - loss_want).abs() <= tol * loss_want.abs(),
            "{what}: loss {loss} vs {loss_want}"
        );
        assert!((0.0..=1.0).contains(&acc), "{what}: accuracy {acc}");
        compare(&what, &got, &want, tol);
    }
}

#[test]
fn eval_bn_cached_gradient_equals_big_batch_gradient() {
    eval_mode_matches(false);
}

#[test]
fn eval_bn_cached_gradient_equals_big_batch_gradient_with_queue() {
    eval_mode_matches(true);
}

#[test]
fn train_bn_single_micro_batch_is_the_plain_step() {
    let seed = fresh_seed("grad_cache_train_single");
    let x = views(seed);
    let q = queue(seed);
    let (net, mut want) = self::net(seed);
    let loss_want = plain_step(&net, &mut want, &x, Some(&q), true);
    let (net, mut got) = self::net(seed);
    let (loss, _) = contrastive_step_cached(
        None,
        &net,
        &mut got,
        &x,
        2 * B,
        TAU,
        Some(&q),
        true,
        recompute(false),
    )
    .and_then(|s| s.read())
    .unwrap();
    // The same ops on the same values in the same order: bit for bit, and the running
    // statistics folded in once (pass 1 leaves them alone).
    assert_eq!(loss, loss_want);
    compare("train BN, micro 2B", &got, &want, 0.0);
}

#[test]
fn train_bn_updates_running_stats_once_per_micro_batch() {
    let seed = fresh_seed("grad_cache_train_running");
    let x = views(seed);
    let micro = 3;
    let (net, mut got) = self::net(seed);
    contrastive_step_cached(
        None,
        &net,
        &mut got,
        &x,
        micro,
        TAU,
        None,
        true,
        recompute(true),
    )
    .unwrap();
    // Expected: one train-mode forward per micro-batch, in order.
    let (net, mut want) = self::net(seed);
    for part in split_rows(&x, micro).unwrap() {
        let mut tape = Tape::inference();
        let xv = tape.constant(part);
        net.project(&mut Ctx::new(&mut tape, &mut want, true), &xv)
            .unwrap();
    }
    for id in want.ids().filter(|&id| !want.is_trainable(id)) {
        assert_close(
            want.name(id),
            got.value(id).unwrap(),
            want.value(id).unwrap(),
            0.0,
        );
    }
}

#[test]
fn split_and_concat_rows_round_trip() {
    let x = views(7);
    let parts = split_rows(&x, 3).unwrap();
    let rows: Vec<usize> = parts.iter().map(|p| p.shape()[0]).collect();
    assert_eq!(rows, vec![3, 3, 2]);
    let back = concat_rows(&parts).unwrap();
    assert_eq!(back.shape(), x.shape());
    assert_eq!(back.to_vec_f64().unwrap(), x.to_vec_f64().unwrap());
}

#[test]
fn pretraining_runs_in_micro_batches() {
    use simclr::train::{pretrain, Config, Env};
    let out = std::env::temp_dir().join(format!("simclr-grad-cache-{}", std::process::id()));
    let mut c = Config {
        out: out.clone(),
        synthetic_train: 32,
        synthetic_test: 8,
        device: "cpu".into(),
        ..Config::default()
    };
    c.pretrain.epochs = 1;
    c.pretrain.batch_size = 16;
    c.pretrain.queue_size = 40;
    c.pretrain.micro_batch = Some(6); // images: 32 views run as 12 + 12 + 8
    let mut env = Env::open(c.clone(), false).unwrap();
    let r = pretrain::run(&mut env).unwrap();
    let loss = r.summary["loss"].as_f64().unwrap();
    assert!(r.complete && loss.is_finite(), "{}", r.summary);
    c.pretrain.micro_batch = Some(0);
    assert!(
        Env::open(c, false).is_err(),
        "a micro-batch of 0 images is refused"
    );
    std::fs::remove_dir_all(out).ok();
}
