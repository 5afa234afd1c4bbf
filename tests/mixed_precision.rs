//! Mixed precision on the tape: master weights in one dtype, activations in a narrower one,
//! weights cast on use and gradients cast back. On the CPU the pair is (f64 master, f32
//! compute): its forward must be the all-f32 forward bit for bit, its gradients the all-f32
//! run's (the two differ only in the loss, taken in the master dtype), and its loss an f32
//! loss within f32's tolerance of the all-f64 run's. On the GPU the same code runs (f32
//! master, bf16 compute).

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

/// What one contrastive step gives, in f64.
struct Step {
    loss: f64,
    /// The projections, as the bits of their f64 values.
    projections: Vec<u64>,
    /// Every trainable tensor's gradient.
    grads: Vec<Vec<f64>>,
}

fn step(master: DType, compute: Option<DType>, x: &Tensor, model: &str) -> Step {
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
    let projections = z
        .value()
        .to_vec_f64()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect();
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
    Step {
        loss: lv,
        projections,
        grads,
    }
}

// Tolerance: the longest reductions are the full-resolution convs' weight gradients, over
// 6·16·16 = 1536 positions; the longest chain is about 40 layers (stem, blocks, head, loss).
const K: usize = 1536;
const DEPTH: usize = 40;

// Why the gradients are compared with the all-f32 run's and not the all-f64 run's: ReLU makes
// the gradient a discontinuous function of the activations. Where a pre-activation lies within
// f32's rounding of zero, the f32 and f64 forwards can take different sides of it and one
// element's gradient is then passed by one run and dropped by the other: no tolerance of
// rounding covers that. Seed 1796146416907069335 does it: one element of layer3.0's output is
// −3.0e-7 in f64 and +1.5e-7 in f32, and layer3's gradients then differ from f64's by 1.6e-2
// relative (21× the bound below). The all-f32 forward is the mixed forward bit for bit (checked
// first), so the two runs take the same side of every ReLU and max-pool, and their gradients
// differ only by the loss being taken in f64 in one and in f32 in the other. The loss is
// continuous, so it is still compared with f64's.
#[test]
fn f64_master_with_f32_compute_is_the_f32_step_with_f64_masters() {
    let seed = fresh_seed("mixed_precision");
    let x = Tensor::randn(&[6, 16, 16, 3], 1.0, DType::F32, &mut Rng::new(seed)).unwrap();
    let tol = tolerance(DType::F32, K, DEPTH);
    for model in ["r18_0.25x_sk1", "r50_0.25x_sk1"] {
        let f64_run = step(DType::F64, None, &x, model);
        let mixed = step(DType::F64, Some(DType::F32), &x, model);
        let f32_run = step(DType::F32, None, &x, model);
        assert!(
            mixed.projections == f32_run.projections,
            "{model}: the f32-compute forward is not the all-f32 forward bit for bit (seed {seed})"
        );
        assert!(
            f64_run.loss != mixed.loss,
            "{model}: the f32 compute path was not taken"
        );
        for (what, l) in [("mixed", mixed.loss), ("f32", f32_run.loss)] {
            assert!(
                (l - f64_run.loss).abs() <= tol * f64_run.loss.abs(),
                "{model}: {what} loss {l} vs f64 {} (seed {seed})",
                f64_run.loss
            );
        }
        assert_eq!(f32_run.grads.len(), mixed.grads.len());
        // Each of the two is within `tol` of the exact gradient of the same piecewise-smooth
        // branch, so they are within 2·tol of each other.
        for (i, (want, got)) in f32_run.grads.iter().zip(&mixed.grads).enumerate() {
            let e = relative_error(got, want);
            assert!(
                e <= 2.0 * tol,
                "{model}: gradient {i}: relative error {e:e} > {:e} (seed {seed})",
                2.0 * tol
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
