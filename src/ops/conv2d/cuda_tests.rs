//! Device (cuDNN) vs CPU parity of the convolutions, forward and backward, f32 and bf16, and of
//! the RGB stem padded to 8 channels on the device.

use crate::ops::{conv2d, Conv2dSpec};
use crate::testing::device::{both, check, device_test, randn, DTYPES};
use crate::testing::fresh_seed;
use crate::{DType, Device, Rng};

fn conv2d_parity(dev: Device) {
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
    // Twice: the first call of a geometry searches for its algorithm, later ones take the
    // remembered choice (run under the math type it was measured with, not the descriptor's
    // default, which lets f32 run in TF32).
    for (dt, pass) in DTYPES
        .into_iter()
        .flat_map(|d| [(d, "searched"), (d, "remembered")])
    {
        for (n, h, w, cin, cout, k, spec) in cases {
            let what = format!("conv {n}x{h}x{w}x{cin}->{cout} k{k} {spec:?} ({pass})");
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
device_test!(conv2d_parity);

/// The RGB stem on the GPU runs padded to 8 channels (src/nn/stem_pad.rs): its output and its
/// 3-channel weight gradient match the CPU's unpadded convolution, f32 and bf16.
fn padded_stem_conv_parity(dev: Device) {
    use crate::autograd::Tape;
    use crate::nn::{Conv2d, Ctx};
    use crate::params::ParamStore;
    let mut rng = Rng::new(fresh_seed("padded_stem"));
    for dt in DTYPES {
        let (n, h, w, cout, k) = (2, 19, 17, 16, 7);
        let run = |x: &crate::Tensor, dy: &crate::Tensor| {
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
device_test!(padded_stem_conv_parity);
