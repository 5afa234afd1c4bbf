//! Device vs CPU parity of the fused cross-entropy (loss and gradient), f32 and bf16.

use crate::ops::loss;
use crate::testing::device::{both, check, device_test, rand, DTYPES};
use crate::testing::fresh_seed;
use crate::{Device, Rng};

fn cross_entropy_parity(dev: Device) {
    let mut rng = Rng::new(fresh_seed("cross_entropy"));
    for dt in DTYPES {
        for (n, c) in [(16, 10), (9, 1500)] {
            let (x, gx) = both(&rand(&[n, c], dt, &mut rng, 3.0, 0.0), dev);
            let labels: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
            let (l, g) = loss::cross_entropy_forward(&x, &labels).unwrap();
            let (gl, gg) = loss::cross_entropy_forward(&gx, &labels).unwrap();
            check("cross_entropy loss", dt, &gl, &l, n * c, 2);
            check("cross_entropy grad", dt, &gg, &g, c, 2);
        }
    }
}
device_test!(cross_entropy_parity);
