//! Op tests that count what crosses to the device (launches, bytes against the traffic floor).
//! The counters are per process, so these run in their own process, one at a time, apart
//! from the parity tests in `src/**/cuda_tests.rs`:
//! - the linked selective-kernel pair through a tape (the backward in two launches, all of du
//!   in the second) against the unlinked pair on the CPU, where the tape adds the two
//!   gradients of u, at the byte count of the traffic floor;
//! - batch norm's statistics launch, which also updates the running averages.
#![cfg(feature = "cuda")]

#[path = "cuda_common.rs"]
mod common;
use common::{both, check, gpu, rand, randn, DTYPES};

use simclr::autograd::{Tape, Var};
use simclr::cuda::traffic_floor::{self as tf, Family, SkShape, FAMILIES};
use simclr::ops;
use simclr::ops::batch_norm::{batch_norm_train_forward_running, Running};
use simclr::params::ParamStore;
use simclr::testing::fresh_seed;
use simclr::{DType, Device, Result, Rng, Tensor};
use std::sync::Mutex;

/// The counters are per process: tests that read them run one at a time.
static TALLY: Mutex<()> = Mutex::new(());

/// The attention as SkConv wires it: logits z = zl + [s | −2s] from the pooled s; linked, or
/// not (the tape then adds the pool's and the mix's gradients of u: the reference).
fn attention(t: &mut Tape, u: &Var, zl: &Var, linked: bool) -> Result<Var> {
    let (n, c) = (u.shape()[0], u.shape()[3] / 2);
    let (s, link) = match linked {
        true => ops::sk_pool_linked(t, u)?,
        false => (ops::sk_pool(t, u)?, ops::SkLink::default()),
    };
    let s = ops::reshape(t, &s, &[n, 1, 1, c])?;
    let s2 = ops::scale(t, &s, -2.0)?;
    let both = ops::concat_channels(t, &[&s, &s2])?;
    let both = ops::reshape(t, &both, &[n, 2 * c])?;
    let z = ops::add(t, zl, &both)?;
    match linked {
        true => ops::sk_mix_linked(t, u, &z, &link),
        false => ops::sk_mix(t, u, &z),
    }
}

/// (y, du, dzl) of the pair under the loss Σ y·r.
fn run(u: &Tensor, zl: &Tensor, r: &Tensor, linked: bool) -> (Tensor, Tensor, Tensor) {
    let mut t = Tape::new();
    let (uv, zv) = (t.leaf(u.clone()), t.leaf(zl.clone()));
    let y = attention(&mut t, &uv, &zv, linked).unwrap();
    let rv = t.constant(r.clone());
    let p = ops::mul(&mut t, &y, &rv).unwrap();
    let loss = ops::sum(&mut t, &p).unwrap();
    let g = t
        .backward(&loss, &mut ParamStore::new(DType::F32, 0))
        .unwrap();
    let y = y.value().clone();
    (y, g.get(&uv).unwrap().clone(), g.get(&zv).unwrap().clone())
}

#[test]
fn linked_pair_matches_the_cpu_in_two_backward_launches_at_the_byte_count() {
    let Some(dev) = gpu() else { return };
    let _g = TALLY.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new(fresh_seed("sk_linked"));
    let slot = |f: Family| FAMILIES.iter().position(|&x| x == f).unwrap();
    for dt in DTYPES {
        for (n, h, w, c) in [(2, 6, 5, 24), (3, 4, 3, 5)] {
            let at = |what: &str| format!("linked {what} {n}x{h}x{w}x{c}");
            let (u, gu) = both(&randn(&[n, h, w, 2 * c], dt, &mut rng), dev);
            let (zl, gzl) = both(&randn(&[n, 2 * c], dt, &mut rng), dev);
            let (r, gr) = both(&randn(&[n, h, w, c], dt, &mut rng), dev);
            // The reference: the unlinked pair on the CPU.
            let want = run(&u, &zl, &r, false);
            let before = tf::tallies();
            let got = run(&gu, &gzl, &gr, true);
            let after = tf::tallies();
            check(&at("y"), dt, &got.0, &want.0, 2, 2);
            check(&at("du"), dt, &got.1, &want.1, h * w, 5);
            check(&at("dz"), dt, &got.2, &want.2, h * w, 3);
            let e = dt.size_in_bytes();
            let shape = SkShape { n, hw: h * w, c, e };
            let (b0, b1) = (
                before[slot(Family::SkBackward)],
                after[slot(Family::SkBackward)],
            );
            assert_eq!(
                b1.launches - b0.launches,
                2,
                "{}: backward launches",
                at("")
            );
            let whole = tf::sk_backward(shape);
            assert_eq!(b1.floor - b0.floor, whole.floor, "{}: floor", at(""));
            assert_eq!(b1.moved - b0.moved, whole.moved, "{}: moved", at(""));
            assert_eq!(b1.old - b0.old, whole.old, "{}: old", at(""));
            let (f0, f1) = (
                before[slot(Family::SkForward)],
                after[slot(Family::SkForward)],
            );
            assert_eq!(f1.launches - f0.launches, 2, "{}: forward launches", at(""));
            assert_eq!(got.1.device(), Device::Cuda(0));
        }
    }
}

/// The values are checked by `ops::batch_norm::cuda_tests::running_averages_come_out_of_the_
/// statistics_launch`; here only the launches are counted.
#[test]
fn batch_norm_statistics_update_the_running_averages_in_their_launch() {
    let Some(dev) = gpu() else { return };
    let _g = TALLY.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new(fresh_seed("bn_running_launches"));
    for dt in DTYPES {
        for shape in [vec![6, 5, 7, 24], vec![3001, 12]] {
            let c = shape[shape.len() - 1];
            let x = rand(&shape, dt, &mut rng, 1.5, 3.0).to_device(dev).unwrap();
            let g = rand(&[c], DType::F32, &mut rng, 0.2, 1.0)
                .to_device(dev)
                .unwrap();
            let (mean, var) = (
                Tensor::zeros(&[c], DType::F32, dev).unwrap(),
                Tensor::full(&[c], 1.0, DType::F32, dev).unwrap(),
            );
            let running = Running {
                mean: &mean,
                var: &var,
                momentum: 0.1,
            };
            let before = simclr::cuda::driver::counters();
            let (_, (_, _, _, new)) =
                batch_norm_train_forward_running(&x, &g, None, 1e-5, Some(running)).unwrap();
            let launches = simclr::cuda::driver::counters().since(&before).launches;
            assert_eq!(launches, 2, "statistics (+ running averages), then apply");
            assert!(new.is_some(), "the running averages came back");
        }
    }
}
