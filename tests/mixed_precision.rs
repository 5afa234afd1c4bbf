//! Mixed precision on the tape: master weights in one dtype, activations in a narrower one,
//! weights cast on use and gradients cast back. On the CPU the pair is (f64 master, f32
//! compute): its gradients must match the all-f64 run within f32's tolerance, and its loss
//! must be an f32 loss (the projections come back to f64 only for the loss). On the GPU the
//! same code runs (f32 master, bf16 compute).

use simclr::autograd::Tape;
use simclr::nn::Ctx;
use simclr::ops;
use simclr::params::ParamStore;
use simclr::testing::{fresh_seed, relative_error, tolerance};
use simclr::train::model::SimClrNet;
#[path = "support/meta.rs"]
mod support_meta;
use simclr::{DType, Rng, Tensor};
use support_meta::pretrain_meta as meta;

/// Loss, then every tensor's gradient (or buffer value) in f64, after one contrastive step.
fn step(master: DType, compute: Option<DType>, x: &Tensor, model: &str) -> (f64, Vec<Vec<f64>>) {
    let mut store = ParamStore::new(master, 11);
    let net = SimClrNet::new(&mut store, meta(model)).unwrap();
    let mut tape = Tape::new();
    let xv = tape.constant(x.to_dtype(master).unwrap());
    let z = net
        .project(
            &mut Ctx::new(&mut tape, &mut store, true).with_compute(compute),
            &xv,
        )
        .unwrap();
    assert_eq!(
        z.value().dtype(),
        master,
        "projections come back in the master dtype"
    );
    let zn = ops::l2_normalize(&mut tape, &z).unwrap();
    let loss = ops::ntxent::ntxent(&mut tape, &zn, None, 0.2).unwrap();
    let lv = loss.value().item().unwrap();
    tape.backward(&loss, &mut store).unwrap();
    let grads = store
        .ids()
        .filter(|&id| store.is_trainable(id))
        .map(|id| {
            let g = store
                .grad(id)
                .expect("every trainable tensor gets a gradient");
            assert_eq!(
                g.dtype(),
                master,
                "gradients reach the master copy in its dtype"
            );
            g.to_vec_f64().unwrap()
        })
        .collect();
    (lv, grads)
}

// Tolerance: the longest reductions are the full-resolution convs' weight gradients, over
// 6·16·16 = 1536 positions; the longest chain is about 40 layers (stem, blocks, head, loss).
const K: usize = 1536;
const DEPTH: usize = 40;

#[test]
fn f64_master_with_f32_compute_matches_f64_within_f32_tolerance() {
    let seed = fresh_seed("mixed_precision");
    let x = Tensor::randn(&[6, 16, 16, 3], 1.0, DType::F32, &mut Rng::new(seed)).unwrap();
    let tol = tolerance(DType::F32, K, DEPTH);
    for model in ["r18_0.25x_sk1", "r50_0.25x_sk1"] {
        let (l64, g64) = step(DType::F64, None, &x, model);
        let (lmix, gmix) = step(DType::F64, Some(DType::F32), &x, model);
        let (l32, _) = step(DType::F32, None, &x, model);
        assert!(l64 != lmix, "{model}: the f32 compute path was not taken");
        for (what, l) in [("mixed", lmix), ("f32", l32)] {
            assert!(
                (l - l64).abs() <= tol * l64.abs(),
                "{model}: {what} loss {l} vs f64 {l64} (seed {seed})"
            );
        }
        assert_eq!(g64.len(), gmix.len());
        for (i, (want, got)) in g64.iter().zip(&gmix).enumerate() {
            let e = relative_error(got, want);
            assert!(
                e <= tol,
                "{model}: gradient {i}: relative error {e:e} > {tol:e} (seed {seed})"
            );
        }
    }
}

#[test]
fn bf16_compute_on_the_cpu_is_a_clear_error() {
    let x = Tensor::randn(&[2, 16, 16, 3], 1.0, DType::F32, &mut Rng::new(1)).unwrap();
    let mut store = ParamStore::new(DType::F32, 1);
    let net = SimClrNet::new(&mut store, meta("r18_0.25x_sk1")).unwrap();
    let mut tape = Tape::new();
    let xv = tape.constant(x);
    let err = net
        .project(
            &mut Ctx::new(&mut tape, &mut store, true).with_compute(Some(DType::BF16)),
            &xv,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("bf16"), "{err}");
}
