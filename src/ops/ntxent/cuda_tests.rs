//! Device vs CPU parity of the fused NT-Xent loss with its queue, f32 and bf16; the CPU computes
//! in f32 from the same (bf16-rounded) inputs.

use crate::ops::normalize::l2_normalize_forward;
use crate::ops::ntxent::{ntxent_accuracy, ntxent_forward};
use crate::testing::device::{both, check, device_test, rand, DTYPES};
use crate::testing::fresh_seed;
use crate::{DType, Device, Rng, Tensor};

/// Normalised projections [2N, d] whose view b is a noisy copy of view a (so accuracy is
/// neither 0 nor 1), and a normalised queue [k, d].
fn projections(n: usize, d: usize, k: usize, dt: DType, rng: &mut Rng) -> (Tensor, Tensor) {
    let a: Vec<f64> = (0..n * d).map(|_| rng.normal()).collect();
    let b: Vec<f64> = a.iter().map(|v| v + 1.5 * rng.normal()).collect();
    let z = Tensor::from_f64(&[a, b].concat(), &[2 * n, d], DType::F32).unwrap();
    let q = rand(&[k, d], DType::F32, rng, 1.0, 0.0);
    let norm = |t: &Tensor| l2_normalize_forward(t).unwrap().to_dtype(dt).unwrap();
    (norm(&z), norm(&q))
}

fn ntxent_parity(dev: Device) {
    let mut rng = Rng::new(fresh_seed("ntxent_parity"));
    // Sizes off the 64-row / 32-wide / 128-column tiles, with and without a queue.
    for (n, d, k, tau) in [(70, 130, 37, 0.1), (128, 128, 0, 0.5), (1, 3, 0, 1.0)] {
        for dt in DTYPES {
            let (z, q) = projections(n, d, k, dt, &mut rng);
            let (z, gz) = both(&z, dev);
            let (q, gq) = both(&q, dev);
            let (q, gq) = if k > 0 {
                (Some(&q), Some(&gq))
            } else {
                (None, None)
            };
            let (loss, dz) = ntxent_forward(&z, q, tau).unwrap();
            let (gloss, gdz) = ntxent_forward(&gz, gq, tau).unwrap();
            // Longest reduction max(d, 2N + K); logits carry a 1/τ factor (as the CPU tests).
            let red = d.max(2 * n + k);
            let depth = (3.0 * (1.0 / tau).max(1.0)).ceil() as usize;
            let what = format!("ntxent n={n} d={d} k={k}");
            check(&format!("{what} loss"), dt, &gloss, &loss, red, depth);
            check(&format!("{what} dz"), dt, &gdz, &dz, red, depth);
            let acc = ntxent_accuracy(&z, q).unwrap();
            let gacc = ntxent_accuracy(&gz, gq).unwrap();
            // Near-ties may round either way: allow two anchors of difference.
            assert!(
                (acc - gacc).abs() <= 2.0 / (2 * n) as f64 + 1e-12,
                "{what} accuracy ({}): gpu {gacc} cpu {acc}",
                dt.name()
            );
        }
    }
}
device_test!(ntxent_parity);

fn ntxent_accuracy_counts_ties_as_misses(dev: Device) {
    for dt in DTYPES {
        let z = Tensor::from_f64(&[0.6, 0.8].repeat(8), &[8, 2], dt).unwrap();
        let acc = ntxent_accuracy(&z.to_device(dev).unwrap(), None).unwrap();
        assert_eq!(acc, 0.0, "{}", dt.name());
    }
}
device_test!(ntxent_accuracy_counts_ties_as_misses);

/// The NT-Xent backward scales by the upstream gradient on the device (no host read): dz for
/// an upstream gradient of -2.75 (exact in bf16) matches the CPU backward, f32 and bf16, with
/// more elements than one block covers.
fn ntxent_backward_scales_by_upstream_on_device(dev: Device) {
    let mut rng = Rng::new(fresh_seed("ntxent_upstream"));
    let (n, d, tau) = (90, 70, 0.2);
    for dt in DTYPES {
        let (z, _) = projections(n, d, 1, dt, &mut rng);
        let grad = |z: &Tensor| {
            let mut tape = crate::autograd::Tape::new();
            let zv = tape.leaf(z.clone());
            let loss = crate::ops::ntxent::ntxent(&mut tape, &zv, None, tau).unwrap();
            let seed = Tensor::full(&[], -2.75, dt, z.device()).unwrap();
            let mut store = crate::params::ParamStore::new(DType::F32, 0);
            let g = tape.backward_from(&[(&loss, seed)], &mut store).unwrap();
            g.get(&zv).unwrap().clone()
        };
        let (z, gz) = both(&z, dev);
        let depth = (3.0 / tau).ceil() as usize + 1;
        check(
            "ntxent dz x upstream",
            dt,
            &grad(&gz),
            &grad(&z),
            d.max(2 * n),
            depth,
        );
    }
}
device_test!(ntxent_backward_scales_by_upstream_on_device);
