//! Device vs CPU parity of the L2 normalisation, forward and backward, f32 and bf16.

use crate::ops::normalize;
use crate::testing::device::{both, check, device_test, rand, randn, DTYPES};
use crate::testing::fresh_seed;
use crate::{Device, Rng};

fn l2_normalize_parity(dev: Device) {
    let mut rng = Rng::new(fresh_seed("l2_normalize"));
    for dt in DTYPES {
        for (n, c) in [(16, 10), (9, 1500)] {
            let (x, gx) = both(&rand(&[n, c], dt, &mut rng, 3.0, 0.0), dev);
            let (dy, gdy) = both(&randn(&[n, c], dt, &mut rng), dev);
            let y = normalize::l2_normalize_forward(&x).unwrap();
            check(
                "l2_normalize",
                dt,
                &normalize::l2_normalize_forward(&gx).unwrap(),
                &y,
                c,
                2,
            );
            let want = normalize::l2_normalize_backward(&x, &dy).unwrap();
            check(
                "l2_normalize_backward",
                dt,
                &normalize::l2_normalize_backward(&gx, &gdy).unwrap(),
                &want,
                c,
                3,
            );
        }
    }
}
device_test!(l2_normalize_parity);
