//! CPU vs CUDA parity of the fused batch norm + (add +) ReLU, forward and backward, NHWC, in
//! f32 and bf16. Without a usable GPU each test prints `skipped: <reason>`.
#![cfg(feature = "cuda")]

#[path = "cuda_common.rs"]
mod common;
use common::{both, check, gpu, rand, randn, DTYPES};

use simclr::ops::bn_act::{
    batch_norm_add_relu_backward, batch_norm_add_relu_forward, batch_norm_relu_backward,
    bn_act_stats, BnActSaved,
};
use simclr::testing::fresh_seed;
use simclr::{DType, Device, Rng};

#[test]
fn bn_act_parity() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(fresh_seed("bn_act_parity"));
    for dt in DTYPES {
        let s = [4, 5, 3, 40];
        let m = 4 * 5 * 3;
        let (x, gx) = both(&rand(&s, dt, &mut rng, 2.0, 0.5), dev);
        let (r, gr) = both(&randn(&s, dt, &mut rng), dev);
        let (dy, gdy) = both(&randn(&s, dt, &mut rng), dev);
        let (g, gg) = both(&rand(&[40], DType::F32, &mut rng, 0.5, 1.0), dev);
        let (b, gb) = both(&randn(&[40], DType::F32, &mut rng), dev);
        let (mean, invstd, var) = bn_act_stats(&x, 1e-5).unwrap();
        let (gmean, ginvstd, gvar) = bn_act_stats(&gx, 1e-5).unwrap();
        check("bn_act mean", DType::F32, &gmean, &mean, m, 1);
        check("bn_act invstd", DType::F32, &ginvstd, &invstd, m, 2);
        check("bn_act var", DType::F32, &gvar, &var, m, 2);
        let y = batch_norm_add_relu_forward(&x, &r, &g, &b, &mean, &invstd).unwrap();
        let gy = batch_norm_add_relu_forward(&gx, &gr, &gg, &gb, &gmean, &ginvstd).unwrap();
        check("bn_add_relu", dt, &gy, &y, m, 2);
        // The backward runs on the GPU's own output (the same ReLU mask on both sides).
        let (y, _) = both(&gy.to_device(Device::Cpu).unwrap(), dev);
        for batch_stats in [true, false] {
            let saved = BnActSaved {
                x: &x,
                y: &y,
                gamma: &g,
                mean: &mean,
                invstd: &invstd,
                batch_stats,
            };
            let gsaved = BnActSaved {
                x: &gx,
                y: &gy,
                gamma: &gg,
                mean: &gmean,
                invstd: &ginvstd,
                batch_stats,
            };
            let (dx, dg, db, dr) = batch_norm_add_relu_backward(&saved, &dy).unwrap();
            let (gdx, gdg, gdb, gdr) = batch_norm_add_relu_backward(&gsaved, &gdy).unwrap();
            check("bn_add_relu dx", dt, &gdx, &dx, m, 3);
            check("bn_add_relu dgamma", DType::F32, &gdg, &dg, m, 3);
            check("bn_add_relu dbeta", DType::F32, &gdb, &db, m, 2);
            check("bn_add_relu dres", dt, &gdr.unwrap(), &dr.unwrap(), 1, 1);
            let (gdx2, _, _) = batch_norm_relu_backward(&gsaved, &gdy).unwrap();
            let (dx2, _, _) = batch_norm_relu_backward(&saved, &dy).unwrap();
            check("bn_relu dx", dt, &gdx2, &dx2, m, 3);
        }
    }
}
