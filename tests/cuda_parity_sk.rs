//! CPU vs CUDA parity of selective-kernel attention (kernels/sk.cu), forward and backward, f32
//! and bf16, on fresh random inputs: channel counts on the 16-byte path (C % 8 == 0) and off it
//! (scalar tails), more channel groups than a block holds, images split into pixel chunks, and
//! the linked pair through a tape (the backward in two launches, all of du in the second)
//! against the unlinked pair on the CPU, where the tape adds the two gradients of u. Run
//! on the emulated device: `SIMCLR_CUDA=emu SIMCLR_REQUIRE_GPU=1 cargo test --features cuda-emu
//! --test cuda_parity_sk`.
#![cfg(feature = "cuda")]

#[path = "cuda_common.rs"]
mod common;
use common::{both, check, gpu, randn, DTYPES};

use simclr::autograd::{Tape, Var};
use simclr::cuda::traffic_floor::{self as tf, Family, SkShape, FAMILIES};
use simclr::ops::{self, sk};
use simclr::params::ParamStore;
use simclr::testing::fresh_seed;
use simclr::{DType, Device, Result, Rng, Tensor};
use std::sync::Mutex;

/// The byte tallies are per process: tests that read them run one at a time.
static TALLY: Mutex<()> = Mutex::new(());

/// (n, h, w, c): vector path, scalar path, 300 groups (two channel blocks), one image of many
/// pixels (several pixel chunks), one pixel.
const SHAPES: [(usize, usize, usize, usize); 5] = [
    (3, 9, 7, 64),
    (2, 5, 3, 13),
    (2, 3, 2, 2400),
    (1, 64, 64, 16),
    (4, 1, 1, 8),
];

#[test]
fn sk_kernels_match_the_cpu() {
    let Some(dev) = gpu() else { return };
    let _g = TALLY.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new(fresh_seed("sk_kernels"));
    for dt in DTYPES {
        for (n, h, w, c) in SHAPES {
            let at = |what: &str| format!("{what} {n}x{h}x{w}x{c}");
            let (u, gu) = both(&randn(&[n, h, w, 2 * c], dt, &mut rng), dev);
            let (z, gz) = both(&randn(&[n, 2 * c], dt, &mut rng), dev);
            let (dy, gdy) = both(&randn(&[n, h, w, c], dt, &mut rng), dev);
            let (ds, gds) = both(&randn(&[n, c], dt, &mut rng), dev);
            let pool = sk::sk_pool_forward(&u).unwrap();
            let got = sk::sk_pool_forward(&gu).unwrap();
            check(&at("sk_pool"), dt, &got, &pool, 2 * h * w, 1);
            let mix = sk::sk_mix_forward(&u, &z).unwrap();
            let got = sk::sk_mix_forward(&gu, &gz).unwrap();
            check(&at("sk_mix"), dt, &got, &mix, 2, 2);
            let dz = sk::sk_mix_backward_dz(&u, &z, &dy).unwrap();
            let got = sk::sk_mix_backward_dz(&gu, &gz, &gdy).unwrap();
            check(&at("sk_mix_backward_dz"), dt, &got, &dz, h * w, 3);
            let shape = u.shape();
            for (mixed, pooled) in [(true, true), (true, false), (false, true)] {
                let what = at(&format!("sk_backward_du mix {mixed} pool {pooled}"));
                let want =
                    sk::sk_backward_du(mixed.then_some((&dy, &z)), pooled.then_some(&ds), shape)
                        .unwrap();
                let got =
                    sk::sk_backward_du(mixed.then_some((&gdy, &gz)), pooled.then_some(&gds), shape)
                        .unwrap();
                check(&what, dt, &got, &want, 2, 3);
            }
        }
    }
}

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
