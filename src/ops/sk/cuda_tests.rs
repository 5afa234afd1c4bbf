//! Device vs CPU parity of selective-kernel attention (kernels/sk.cu), forward and backward, f32
//! and bf16, on fresh random inputs: channel counts on the 16-byte path (C % 8 == 0) and off it
//! (scalar tails), more channel groups than a block holds, images split into pixel chunks. The
//! linked pair, whose test also counts launches and bytes, is in tests/cuda_op_counts.rs.

use crate::ops::sk;
use crate::testing::device::{both, check, device_test, randn, DTYPES};
use crate::testing::fresh_seed;
use crate::{Device, Rng};

/// (n, h, w, c): vector path, scalar path, 300 groups (two channel blocks), one image of many
/// pixels (several pixel chunks), one pixel.
const SHAPES: [(usize, usize, usize, usize); 5] = [
    (3, 9, 7, 64),
    (2, 5, 3, 13),
    (2, 3, 2, 2400),
    (1, 64, 64, 16),
    (4, 1, 1, 8),
];

fn sk_kernels_match_the_cpu(dev: Device) {
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
device_test!(sk_kernels_match_the_cpu);

/// The pool and mix one shape at a time, each direction through its own entry point (the
/// backward of the mix as the pair du, dz).
fn sk_pool_and_mix_parity(dev: Device) {
    let mut rng = Rng::new(fresh_seed("sk_pool_mix"));
    for dt in DTYPES {
        let (n, h, w, c) = (3, 9, 7, 40);
        let (u, gu) = both(&randn(&[n, h, w, 2 * c], dt, &mut rng), dev);
        let (z, gz) = both(&randn(&[n, 2 * c], dt, &mut rng), dev);
        check(
            "sk_pool",
            dt,
            &sk::sk_pool_forward(&gu).unwrap(),
            &sk::sk_pool_forward(&u).unwrap(),
            2 * h * w,
            1,
        );
        let (dp, gdp) = both(&randn(&[n, c], dt, &mut rng), dev);
        check(
            "sk_pool_backward",
            dt,
            &sk::sk_pool_backward(&gdp, u.shape()).unwrap(),
            &sk::sk_pool_backward(&dp, u.shape()).unwrap(),
            1,
            1,
        );
        check(
            "sk_mix",
            dt,
            &sk::sk_mix_forward(&gu, &gz).unwrap(),
            &sk::sk_mix_forward(&u, &z).unwrap(),
            2,
            2,
        );
        let (dy, gdy) = both(&randn(&[n, h, w, c], dt, &mut rng), dev);
        let (du, dz) = sk::sk_mix_backward(&u, &z, &dy).unwrap();
        let (gdu, gdz) = sk::sk_mix_backward(&gu, &gz, &gdy).unwrap();
        check("sk_mix_backward du", dt, &gdu, &du, 1, 2);
        check("sk_mix_backward dz", dt, &gdz, &dz, h * w, 2);
    }
}
device_test!(sk_pool_and_mix_parity);
