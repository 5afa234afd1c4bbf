//! CPU vs CUDA parity of the cuDNN convolutions and batch norm, forward and backward, in f32
//! and bf16 (see tests/cuda_parity.rs). Without a usable GPU each test prints `skipped: <reason>`.
#![cfg(feature = "cuda")]

#[path = "cuda_common.rs"]
mod common;
use common::{both, check, gpu, rand, randn, DTYPES};

use simclr::ops::{batch_norm as bn, conv2d, Conv2dSpec};
use simclr::testing::fresh_seed;
use simclr::{DType, Rng};

#[test]
fn conv2d_parity() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(fresh_seed("conv2d"));
    // (n, h, w, cin, cout, k, spec): the ResNet shapes, odd sizes, groups and dilation.
    let cases = [
        (2, 9, 11, 16, 24, 3, Conv2dSpec::new(1, 1)),
        (2, 10, 10, 8, 16, 3, Conv2dSpec::new(2, 1)),
        (3, 7, 7, 32, 16, 1, Conv2dSpec::new(1, 0)),
        (2, 8, 9, 16, 32, 1, Conv2dSpec::new(2, 0)),
        (1, 23, 21, 3, 16, 7, Conv2dSpec::new(2, 3)),
        (2, 9, 9, 16, 32, 3, Conv2dSpec::new(1, 1).with_groups(4)),
        (2, 12, 12, 8, 8, 3, Conv2dSpec::new(1, 2).with_dilation(2)),
    ];
    for dt in DTYPES {
        for (n, h, w, cin, cout, k, spec) in cases {
            let what = format!("conv {n}x{h}x{w}x{cin}->{cout} k{k} {spec:?}");
            let (x, gx) = both(&randn(&[n, h, w, cin], dt, &mut rng), dev);
            let (wt, gw) = both(&randn(&[cout, k, k, cin / spec.groups], dt, &mut rng), dev);
            let y = conv2d::conv2d_forward(&x, &wt, &spec).unwrap();
            let gy = conv2d::conv2d_forward(&gx, &gw, &spec).unwrap();
            check(
                &format!("{what} forward"),
                dt,
                &gy,
                &y,
                k * k * cin / spec.groups,
                1,
            );
            let (dy, gdy) = both(&randn(y.shape(), dt, &mut rng), dev);
            let dx = conv2d::conv2d_backward_input(&dy, &wt, x.shape(), &spec).unwrap();
            let gdx = conv2d::conv2d_backward_input(&gdy, &gw, x.shape(), &spec).unwrap();
            check(
                &format!("{what} backward_input"),
                dt,
                &gdx,
                &dx,
                k * k * cout / spec.groups,
                1,
            );
            let dw = conv2d::conv2d_backward_weight(&x, &dy, wt.shape(), &spec).unwrap();
            let gdw = conv2d::conv2d_backward_weight(&gx, &gdy, wt.shape(), &spec).unwrap();
            let (_, ho, wo, _) = y.dims4("test").unwrap();
            check(
                &format!("{what} backward_weight"),
                dt,
                &gdw,
                &dw,
                n * ho * wo,
                1,
            );
        }
    }
}

#[test]
fn batch_norm_parity() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(fresh_seed("batch_norm"));
    for dt in DTYPES {
        // NHWC with 8-channel groups; a channel tail (C % 8 != 0, one channel per thread);
        // a reduction over many row chunks (blocks finished by the last one); more rows than
        // the channel-group grid has lanes (the row loop of kernels/vec.cuh); and more channel
        // groups than a reduction block holds (520 = 65 groups of 8, 45 of 1: 3 and 2 columns
        // of blocks, the last one partial).
        for shape in [
            vec![4, 13, 11, 40],
            vec![64, 96],
            vec![2, 7, 5, 12],
            vec![3001, 24],
            vec![40_000, 64],
            vec![37, 520],
            vec![300, 45],
        ] {
            let c = shape[shape.len() - 1];
            let m: usize = shape.iter().product::<usize>() / c;
            let (x, gx) = both(&rand(&shape, dt, &mut rng, 2.0, 0.5), dev);
            let (g, gg) = both(&rand(&[c], dt, &mut rng, 0.2, 1.0), dev);
            let (b, gb) = both(&randn(&[c], dt, &mut rng), dev);
            let (y, mean, invstd, var) =
                bn::batch_norm_train_forward(&x, &g, Some(&b), 1e-5).unwrap();
            let (gy, gmean, ginvstd, gvar) =
                bn::batch_norm_train_forward(&gx, &gg, Some(&gb), 1e-5).unwrap();
            check("bn train y", dt, &gy, &y, m, 2);
            // Statistics are fp32 on the GPU whatever the data type.
            check("bn mean", DType::F32, &gmean, &mean, m, 1);
            check("bn invstd", DType::F32, &ginvstd, &invstd, m, 2);
            check("bn var", DType::F32, &gvar, &var, m, 2);
            // Eval mode with running statistics given in the data type.
            let (rm, grm) = both(&randn(&[c], dt, &mut rng), dev);
            let (rv, grv) = both(&rand(&[c], dt, &mut rng, 0.3, 1.5), dev);
            let (ye, ie) = bn::batch_norm_eval_forward(&x, &g, None, &rm, &rv, 1e-5).unwrap();
            let (gye, gie) = bn::batch_norm_eval_forward(&gx, &gg, None, &grm, &grv, 1e-5).unwrap();
            check("bn eval y", dt, &gye, &ye, 1, 2);
            check("bn eval invstd", DType::F32, &gie, &ie, 1, 1);
            let (dy, gdy) = both(&randn(&shape, dt, &mut rng), dev);
            for stats in [true, false] {
                let (dx, dg, db) =
                    bn::batch_norm_backward(&x, &dy, &g, &mean, &invstd, stats).unwrap();
                let (gm, gi) = (mean.to_device(dev).unwrap(), invstd.to_device(dev).unwrap());
                let (gdx, gdg, gdb) =
                    bn::batch_norm_backward(&gx, &gdy, &gg, &gm, &gi, stats).unwrap();
                check(
                    &format!("bn backward dx stats={stats}"),
                    dt,
                    &gdx,
                    &dx,
                    m,
                    3,
                );
                check("bn backward dgamma", DType::F32, &gdg, &dg, m, 2);
                check("bn backward dbeta", DType::F32, &gdb, &db, m, 1);
            }
        }
    }
}

/// The RGB stem on the GPU runs padded to 8 channels (src/nn/stem_pad.rs): its output and its
/// 3-channel weight gradient match the CPU's unpadded convolution, f32 and bf16.
#[test]
fn padded_stem_conv_parity() {
    use simclr::autograd::Tape;
    use simclr::nn::{Conv2d, Ctx};
    use simclr::params::ParamStore;
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(fresh_seed("padded_stem"));
    for dt in DTYPES {
        let (n, h, w, cout, k) = (2, 19, 17, 16, 7);
        let run = |x: &simclr::Tensor, dy: &simclr::Tensor| {
            let mut store = ParamStore::new(DType::F32, 3);
            let conv = Conv2d::new(&mut store, "stem", 3, cout, k, 2).unwrap();
            store.to(x.device(), DType::F32).unwrap();
            let mut tape = Tape::new();
            let xv = tape.constant(x.clone());
            let y = conv
                .forward(&mut Ctx::new(&mut tape, &mut store, true), &xv)
                .unwrap();
            let out = y.value().clone();
            tape.backward_from(&[(&y, dy.clone())], &mut store).unwrap();
            let g = store.grad(conv.weight).unwrap().clone();
            (out, g)
        };
        let (x, gx) = both(&randn(&[n, h, w, 3], dt, &mut rng), dev);
        let (ho, wo) = (h.div_ceil(2), w.div_ceil(2));
        let (dy, gdy) = both(&randn(&[n, ho, wo, cout], dt, &mut rng), dev);
        let (y, dw) = run(&x, &dy);
        let (gy, gdw) = run(&gx, &gdy);
        assert_eq!(gdw.shape(), &[cout, k, k, 3], "the weight keeps 3 channels");
        check("padded stem forward", dt, &gy, &y, k * k * 3, 1);
        check("padded stem weight gradient", dt, &gdw, &dw, n * ho * wo, 1);
    }
}
