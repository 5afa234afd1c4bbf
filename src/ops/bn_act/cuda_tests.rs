//! Device vs CPU parity of the fused batch norm + (add +) ReLU, forward and backward, NHWC, in
//! f32 and bf16.

use crate::ops::bn_act::{
    batch_norm_add_relu_backward, batch_norm_add_relu_forward, batch_norm_relu_backward,
    batch_norm_relu_forward, bn_act_stats, BnActSaved,
};
use crate::testing::device::{both, check, device_test, rand, randn, DTYPES};
use crate::testing::fresh_seed;
use crate::{DType, Device, Rng, Tensor};

/// The saved state from [x, y, gamma, beta, mean, invstd].
fn saved<'a>(t: [&'a Tensor; 6], batch_stats: bool) -> BnActSaved<'a> {
    let [x, y, gamma, beta, mean, invstd] = t;
    BnActSaved {
        x,
        y,
        gamma,
        beta,
        mean,
        invstd,
        batch_stats,
    }
}

fn bn_act_parity(dev: Device) {
    let mut rng = Rng::new(fresh_seed("bn_act_parity"));
    for dt in DTYPES {
        // 8-channel groups (40, 24, 520: more groups than one reduction block holds), one
        // channel per thread (12, 45: two columns of blocks), and many row chunks (20,000 rows).
        for s in [
            vec![4, 5, 3, 40],
            vec![2, 7, 5, 12],
            vec![20_000, 24],
            vec![37, 520],
            vec![300, 45],
        ] {
            let c = s[s.len() - 1];
            let m = s.iter().product::<usize>() / c;
            let (x, gx) = both(&rand(&s, dt, &mut rng, 2.0, 0.5), dev);
            let (r, gr) = both(&randn(&s, dt, &mut rng), dev);
            let (dy, gdy) = both(&randn(&s, dt, &mut rng), dev);
            let (g, gg) = both(&rand(&[c], DType::F32, &mut rng, 0.5, 1.0), dev);
            let (b, gb) = both(&randn(&[c], DType::F32, &mut rng), dev);
            let (mean, invstd, var) = bn_act_stats(&x, 1e-5).unwrap();
            let (gmean, ginvstd, gvar) = bn_act_stats(&gx, 1e-5).unwrap();
            check("bn_act mean", DType::F32, &gmean, &mean, m, 1);
            check("bn_act invstd", DType::F32, &ginvstd, &invstd, m, 2);
            check("bn_act var", DType::F32, &gvar, &var, m, 2);
            let y = batch_norm_add_relu_forward(&x, &r, &g, &b, &mean, &invstd).unwrap();
            let gy = batch_norm_add_relu_forward(&gx, &gr, &gg, &gb, &gmean, &ginvstd).unwrap();
            check("bn_add_relu", dt, &gy, &y, m, 2);
            let gy2 = batch_norm_relu_forward(&gx, &gg, &gb, &gmean, &ginvstd).unwrap();
            // The backward runs on the GPU's own outputs (the same ReLU mask on both sides; the
            // GPU takes BN + ReLU's from x, which must agree with y > 0).
            let (y, _) = both(&gy.to_device(Device::Cpu).unwrap(), dev);
            let (y2, _) = both(&gy2.to_device(Device::Cpu).unwrap(), dev);
            let masked = y2
                .to_vec_f64()
                .unwrap()
                .iter()
                .filter(|&&v| v <= 0.0)
                .count();
            assert!(
                masked > 0 && masked < y2.numel(),
                "{s:?}: both sides of the ReLU"
            );
            for batch_stats in [true, false] {
                let cs = saved([&x, &y, &g, &b, &mean, &invstd], batch_stats);
                let gs = saved([&gx, &gy, &gg, &gb, &gmean, &ginvstd], batch_stats);
                let (dx, dg, db, dr) = batch_norm_add_relu_backward(&cs, &dy).unwrap();
                let (gdx, gdg, gdb, gdr) = batch_norm_add_relu_backward(&gs, &gdy).unwrap();
                check("bn_add_relu dx", dt, &gdx, &dx, m, 3);
                check("bn_add_relu dgamma", DType::F32, &gdg, &dg, m, 3);
                check("bn_add_relu dbeta", DType::F32, &gdb, &db, m, 2);
                check("bn_add_relu dres", dt, &gdr.unwrap(), &dr.unwrap(), 1, 1);
                let cs = saved([&x, &y2, &g, &b, &mean, &invstd], batch_stats);
                let gs = saved([&gx, &gy2, &gg, &gb, &gmean, &ginvstd], batch_stats);
                let (dx2, dg2, db2) = batch_norm_relu_backward(&cs, &dy).unwrap();
                let (gdx2, gdg2, gdb2) = batch_norm_relu_backward(&gs, &gdy).unwrap();
                check("bn_relu dx", dt, &gdx2, &dx2, m, 3);
                check("bn_relu dgamma", DType::F32, &gdg2, &dg2, m, 3);
                check("bn_relu dbeta", DType::F32, &gdb2, &db2, m, 2);
            }
        }
    }
}
device_test!(bn_act_parity);
