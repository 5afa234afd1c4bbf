//! Device vs CPU parity of softmax and log-softmax, forward and backward, f32 and bf16.

use crate::ops::softmax;
use crate::testing::device::{both, check, device_test, rand, randn, DTYPES};
use crate::testing::fresh_seed;
use crate::{Device, Rng};

fn softmax_parity(dev: Device) {
    let mut rng = Rng::new(fresh_seed("softmax"));
    for dt in DTYPES {
        for (n, c) in [(16, 10), (9, 1500)] {
            let (x, gx) = both(&rand(&[n, c], dt, &mut rng, 3.0, 0.0), dev);
            let (dy, gdy) = both(&randn(&[n, c], dt, &mut rng), dev);
            let y = softmax::softmax_forward(&x).unwrap();
            let gy = softmax::softmax_forward(&gx).unwrap();
            check("softmax", dt, &gy, &y, c, 2);
            let (yb, _) = both(&gy.to_device(Device::Cpu).unwrap(), dev);
            check(
                "softmax_backward",
                dt,
                &softmax::softmax_backward(&gy, &gdy).unwrap(),
                &softmax::softmax_backward(&yb, &dy).unwrap(),
                c,
                2,
            );
            let y = softmax::log_softmax_forward(&x).unwrap();
            let gy = softmax::log_softmax_forward(&gx).unwrap();
            check("log_softmax", dt, &gy, &y, c, 2);
            let (yb, _) = both(&gy.to_device(Device::Cpu).unwrap(), dev);
            check(
                "log_softmax_backward",
                dt,
                &softmax::log_softmax_backward(&gy, &gdy).unwrap(),
                &softmax::log_softmax_backward(&yb, &dy).unwrap(),
                c,
                2,
            );
        }
    }
}
device_test!(softmax_parity);
