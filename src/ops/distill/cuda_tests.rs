//! Device vs CPU parity of the fused distillation loss, f32 and bf16.

use crate::ops::distill::{distill_forward, DistillSpec};
use crate::testing::device::{both, check, device_test, rand, DTYPES};
use crate::testing::fresh_seed;
use crate::{Device, Rng};

fn distill_parity(dev: Device) {
    let mut rng = Rng::new(fresh_seed("distill_parity"));
    for dt in DTYPES {
        for (b, c) in [(16, 10), (9, 1500)] {
            let (s, gs) = both(&rand(&[b, c], dt, &mut rng, 3.0, 0.0), dev);
            let (t, gt) = both(&rand(&[b, c], dt, &mut rng, 3.0, 0.5), dev);
            let labels: Vec<usize> = (0..b).map(|_| rng.below(c)).collect();
            let cases = [
                (DistillSpec::unlabelled(2.0), None),
                (
                    DistillSpec {
                        alpha: 0.3,
                        tau: 0.5,
                    },
                    Some(&labels[..]),
                ),
                (
                    DistillSpec {
                        alpha: 0.0,
                        tau: 1.0,
                    },
                    Some(&labels[..]),
                ),
            ];
            for (spec, y) in cases {
                let (l, g) = distill_forward(&s, &t, y, spec).unwrap();
                let (gl, gg) = distill_forward(&gs, &gt, y, spec).unwrap();
                let depth = (3.0 * (1.0 / spec.tau).max(1.0)).ceil() as usize;
                let what = format!("distill b={b} c={c} {spec:?}");
                check(&format!("{what} loss"), dt, &gl, &l, b * c, depth);
                check(&format!("{what} grad"), dt, &gg, &g, c, depth);
            }
        }
    }
}
device_test!(distill_parity);
