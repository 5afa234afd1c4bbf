//! Device vs CPU parity of batch norm, forward and backward, f32 and bf16, and of what issue 15
//! folded into its kernels: the running averages coming out of the statistics launch, the
//! channel-group apply over more than 65,535 blocks' worth of elements, and the scalar path of
//! 8-channel groups whose tensors are not 16-byte aligned (raw launches at an offset: tensors
//! themselves always are). The launch count of the statistics is in tests/cuda_op_counts.rs.

use crate::cuda::kernels::{self as k, DevPtr, DevPtrMut};
use crate::ops::batch_norm as bn;
use crate::ops::batch_norm::{
    batch_norm_eval_forward, batch_norm_train_forward_running, bn_act_stats_running, Running,
};
use crate::testing::device::{both, check, device_test, rand, randn, DTYPES};
use crate::testing::fresh_seed;
use crate::{DType, Device, Rng, Tensor};

fn batch_norm_parity(dev: Device) {
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
device_test!(batch_norm_parity);

fn running_averages_come_out_of_the_statistics_launch(dev: Device) {
    let mut rng = Rng::new(fresh_seed("bn_running"));
    for dt in DTYPES {
        for shape in [vec![6, 5, 7, 24], vec![3001, 12]] {
            let c = shape[shape.len() - 1];
            let m = shape.iter().product::<usize>() / c;
            let (x, gx) = both(&rand(&shape, dt, &mut rng, 1.5, 3.0), dev);
            let (g, gg) = both(&rand(&[c], DType::F32, &mut rng, 0.2, 1.0), dev);
            let (rm, grm) = both(&randn(&[c], DType::F32, &mut rng), dev);
            let (rv, grv) = both(&rand(&[c], DType::F32, &mut rng, 0.2, 1.0), dev);
            let run = |mean, var| {
                Some(Running {
                    mean,
                    var,
                    momentum: 0.1,
                })
            };
            let (gy, (_, _, _, gnew)) =
                batch_norm_train_forward_running(&gx, &gg, None, 1e-5, run(&grm, &grv)).unwrap();
            let (y, (_, _, _, new)) =
                batch_norm_train_forward_running(&x, &g, None, 1e-5, run(&rm, &rv)).unwrap();
            check("bn y", dt, &gy, &y, m, 2);
            let ((nm, nv), (gnm, gnv)) = (new.unwrap(), gnew.unwrap());
            check("running mean", DType::F32, &gnm, &nm, m, 1);
            check("running var", DType::F32, &gnv, &nv, m, 2);
            let (_, _, _, gnew) = bn_act_stats_running(&gx, 1e-5, run(&grm, &grv)).unwrap();
            let (gnm2, gnv2) = gnew.unwrap();
            check("bn_act running mean", DType::F32, &gnm2, &nm, m, 1);
            check("bn_act running var", DType::F32, &gnv2, &nv, m, 2);
        }
    }
}
device_test!(running_averages_come_out_of_the_statistics_launch);

fn apply_covers_more_than_65535_blocks_of_work(dev: Device) {
    let mut rng = Rng::new(fresh_seed("bn_big"));
    // 2^21 + 3 rows x 8 channels: 65,536 blocks of 256 elements and a partial one.
    let shape = [(1 << 21) + 3, 8];
    let dt = DType::BF16;
    let (x, gx) = both(&randn(&shape, dt, &mut rng), dev);
    let (g, gg) = both(&rand(&[8], DType::F32, &mut rng, 0.2, 1.0), dev);
    let (b, gb) = both(&randn(&[8], DType::F32, &mut rng), dev);
    let (rm, grm) = both(&randn(&[8], DType::F32, &mut rng), dev);
    let (rv, grv) = both(&rand(&[8], DType::F32, &mut rng, 0.2, 1.0), dev);
    let (y, _) = batch_norm_eval_forward(&x, &g, Some(&b), &rm, &rv, 1e-5).unwrap();
    let (gy, _) = batch_norm_eval_forward(&gx, &gg, Some(&gb), &grm, &grv, 1e-5).unwrap();
    check("bn eval y, 2^24 elements", dt, &gy, &y, 1, 2);
}
device_test!(apply_covers_more_than_65535_blocks_of_work);

/// y = relu((x − mean)·invstd·gamma + beta + res) on the CPU, in f64.
fn reference(x: &[f64], res: &[f64], p: &[Vec<f64>; 4], c: usize) -> Vec<f64> {
    let [mean, invstd, gamma, beta] = p;
    (0..x.len())
        .map(|i| {
            let j = i % c;
            ((x[i] - mean[j]) * invstd[j] * gamma[j] + beta[j] + res[i]).max(0.0)
        })
        .collect()
}

fn eight_channel_groups_at_a_misaligned_offset_take_the_scalar_path(dev: Device) {
    let Device::Cuda(ordinal) = dev else { return };
    let gpu = crate::cuda::gpu(ordinal).unwrap();
    let mut rng = Rng::new(fresh_seed("bn_misaligned"));
    let (m, c) = (37, 16);
    let n = m * c;
    for dt in DTYPES {
        // One element more than needed, used from element 1 on: 2 or 4 bytes off 16.
        let host = [0, 1].map(|_| rand(&[n + 1], dt, &mut rng, 1.0, 0.2));
        let (x, res) = (
            host[0].to_device(dev).unwrap(),
            host[1].to_device(dev).unwrap(),
        );
        let p = [0.1, 0.5, 0.3, -0.2].map(|s| rand(&[c], DType::F32, &mut rng, 0.2, s + 1.0));
        let gp = p.clone().map(|t| t.to_device(dev).unwrap());
        let y = Tensor::zeros(&[n + 1], dt, dev).unwrap();
        let (launch, lanes) = crate::cuda::groups::group_launch(m, c);
        let e = dt.size_in_bytes() as u64;
        let ptrs = gp.each_ref().map(|t| DevPtr::<f32>::of(t, "test").unwrap());
        let [mean, invstd, gamma, beta] = ptrs;
        let ok = |r: crate::Result<()>| r.unwrap();
        macro_rules! launch {
            ($t:ty) => {{
                // SAFETY: each offset view lies inside its n + 1 element buffer.
                let (xp, rp, yp) = unsafe {
                    (
                        DevPtr::<$t>::from_raw(DevPtr::<$t>::of(&x, "test").unwrap().addr() + e),
                        DevPtr::<$t>::from_raw(DevPtr::<$t>::of(&res, "test").unwrap().addr() + e),
                        DevPtrMut::<$t>::from_raw(DevPtr::<$t>::of(&y, "test").unwrap().addr() + e),
                    )
                };
                ok(k::batch_norm_apply(
                    &gpu,
                    launch,
                    xp,
                    rp,
                    mean,
                    invstd,
                    gamma,
                    beta,
                    m as i64,
                    c as i32,
                    lanes as i64,
                    1,
                    yp,
                ));
            }};
        }
        match dt {
            DType::F32 => launch!(f32),
            _ => launch!(half::bf16),
        }
        let f = |t: &Tensor| t.to_dtype(DType::F64).unwrap().to_vec_f64().unwrap();
        let pv = p.each_ref().map(f);
        let want = reference(&f(&host[0])[1..], &f(&host[1])[1..], &pv, c);
        let got = f(&y.to_device(Device::Cpu).unwrap());
        let tol = if dt == DType::F32 { 1e-5 } else { 2e-2 };
        for (i, (g, w)) in got[1..].iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= tol * (1.0 + w.abs()),
                "{dt:?} element {i}: {g} vs {w}"
            );
        }
    }
}
device_test!(eight_channel_groups_at_a_misaligned_offset_take_the_scalar_path);

fn statistics_at_a_misaligned_offset_take_the_scalar_path(dev: Device) {
    let Device::Cuda(ordinal) = dev else { return };
    let gpu = crate::cuda::gpu(ordinal).unwrap();
    let mut rng = Rng::new(fresh_seed("bn_stats_misaligned"));
    // 8-channel groups over 3 row chunks, x starting one element past a 16-byte boundary.
    let (m, c) = (3000, 16);
    let (g, rows) = crate::cuda::groups::chunks(m, c);
    assert!(g > 1, "a multi-block reduction");
    for dt in DTYPES {
        let host = rand(&[m * c + 1], dt, &mut rng, 1.0, 0.5);
        let x = host.to_device(dev).unwrap();
        let f32s = |n: usize| Tensor::zeros(&[n], DType::F32, dev).unwrap();
        let (part, done) = (f32s(2 * g * c), f32s(crate::cuda::groups::col_blocks(c)));
        let outs = [f32s(c), f32s(c), f32s(c)];
        let [mean, invstd, var] = outs
            .each_ref()
            .map(|t| DevPtrMut::<f32>::of(t, "test").unwrap());
        let e = dt.size_in_bytes() as u64;
        let (pp, dp) = (
            DevPtrMut::<f32>::of(&part, "test").unwrap(),
            // SAFETY: zeroed f32s are zeroed u32 tickets, one per column of blocks.
            unsafe { DevPtrMut::<u32>::from_raw(DevPtr::<f32>::of(&done, "test").unwrap().addr()) },
        );
        let launch = crate::cuda::groups::reduce_launch(c, g);
        let (nul, nulm) = (DevPtr::<f32>::null(), DevPtrMut::<f32>::null());
        macro_rules! launch {
            ($t:ty) => {{
                // SAFETY: the view from element 1 lies inside the m·c + 1 element buffer.
                let xp = unsafe {
                    DevPtr::<$t>::from_raw(DevPtr::<$t>::of(&x, "test").unwrap().addr() + e)
                };
                k::batch_norm_stats(
                    &gpu,
                    launch,
                    xp,
                    m as i64,
                    c as i32,
                    rows as i64,
                    1e-5,
                    0.0,
                    nul,
                    nul,
                    pp,
                    dp,
                    mean,
                    invstd,
                    var,
                    nulm,
                    nulm,
                )
                .unwrap();
            }};
        }
        match dt {
            DType::F32 => launch!(f32),
            _ => launch!(half::bf16),
        }
        let xs = host.to_dtype(DType::F64).unwrap().to_vec_f64().unwrap();
        let got = outs.each_ref().map(|t| {
            let t = t.to_device(Device::Cpu).unwrap();
            t.to_dtype(DType::F64).unwrap().to_vec_f64().unwrap()
        });
        for j in 0..c {
            let col: Vec<f64> = (0..m).map(|r| xs[1 + r * c + j]).collect();
            let mu = col.iter().sum::<f64>() / m as f64;
            let var = col.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / (m - 1) as f64;
            assert!(
                (got[0][j] - mu).abs() <= 1e-5 * (1.0 + mu.abs()),
                "{dt:?} mean {j}"
            );
            assert!((got[2][j] - var).abs() <= 1e-4 * var, "{dt:?} var {j}");
        }
    }
}
device_test!(statistics_at_a_misaligned_offset_take_the_scalar_path);
