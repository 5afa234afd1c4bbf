use super::*;
use crate::ops::l2_normalize;
use crate::ops::normalize::l2_normalize_forward;
use crate::testing::{assert_close, check_gradients, fresh_seed, load_fixture, randn64, tolerance};
use crate::{DType, Device, Rng};
use std::collections::HashMap;

fn fixtures() -> HashMap<String, Tensor> {
    load_fixture(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/method_ntxent.safetensors"),
    )
}

/// k = the longest reduction: max(d, 2N + K) (the dot products; each anchor's log-sum-exp and
/// each gradient row's sum over candidates). depth 3: dot → log-sum-exp → mean (or weighted
/// sum). The logits are dots divided by τ, which scales their rounding error by 1/τ: hence the
/// extra factor max(1, 1/τ).
fn tol(dtype: DType, z: &Tensor, k: usize, tau: f64) -> f64 {
    let (rows, d) = (z.shape()[0], z.shape()[1]);
    tolerance(dtype, d.max(rows + k), 3) * (1.0 / tau).max(1.0)
}

#[test]
fn matches_pytorch_in_f64_and_f32() {
    let f = fixtures();
    let mut cases = 0;
    while let Some(z) = f.get(&format!("c{cases}.z")) {
        let c = format!("c{cases}");
        let queue = f.get(&format!("{c}.queue"));
        let tau = f[&format!("{c}.tau")].to_vec_f64().unwrap()[0];
        let k = queue.map_or(0, |q| q.shape()[0]);
        for dt in [DType::F64, DType::F32] {
            let zt = z.to_dtype(dt).unwrap();
            let qt = queue.map(|q| q.to_dtype(dt).unwrap());
            let (loss, dz) = ntxent_forward(&zt, qt.as_ref(), tau).unwrap();
            // f32 inputs are themselves rounded: one more unit of error in every operand.
            let t = tol(dt, z, k, tau) * if dt == DType::F32 { 2.0 } else { 1.0 };
            assert_close(
                &format!("{c} loss {}", dt.name()),
                &loss,
                &f[&format!("{c}.loss")],
                t,
            );
            assert_close(
                &format!("{c} dz {}", dt.name()),
                &dz,
                &f[&format!("{c}.dz")],
                t,
            );
        }
        let acc = ntxent_accuracy(z, queue).unwrap();
        assert_eq!(
            acc,
            f[&format!("{c}.accuracy")].item().unwrap(),
            "{c} accuracy"
        );
        cases += 1;
    }
    assert_eq!(cases, 5, "fixture cases");
}

#[test]
fn gradients_match_finite_differences() {
    let seed = fresh_seed("ntxent");
    let mut rng = Rng::new(seed);
    for (n, d, k, tau) in [
        (3, 4, 0, 0.5),
        (2, 5, 4, 0.2),
        (1, 3, 2, 1.0),
        (4, 3, 0, 0.1),
    ] {
        let x = randn64(&[2 * n, d], &mut rng);
        let queue = (k > 0).then(|| l2_normalize_forward(&randn64(&[k, d], &mut rng)).unwrap());
        check_gradients("ntxent", &[x], 40, seed, |t, v| {
            let z = l2_normalize(t, &v[0])?;
            ntxent(t, &z, queue.as_ref(), tau)
        });
    }
}

#[test]
fn accuracy_is_strict() {
    // Every row equal: the positive ties with every negative, which counts as a miss.
    let same = Tensor::full(&[4, 3], 0.5, DType::F64, Device::Cpu).unwrap();
    assert_eq!(ntxent_accuracy(&same, None).unwrap(), 0.0);
    // Views identical and images orthogonal: every positive wins.
    let eye: Vec<f64> = (0..3)
        .flat_map(|i| (0..3).map(move |j| f64::from(u8::from(i == j))))
        .collect();
    let z = Tensor::from_f64(&[eye.clone(), eye].concat(), &[6, 3], DType::F64).unwrap();
    assert_eq!(ntxent_accuracy(&z, None).unwrap(), 1.0);
    // A queue row equal to the positive steals the win.
    let q = Tensor::from_f64(&[1.0, 0.0, 0.0], &[1, 3], DType::F64).unwrap();
    assert!((ntxent_accuracy(&z, Some(&q)).unwrap() - 4.0 / 6.0).abs() < 1e-15);
}

#[test]
fn one_pair_without_queue_has_zero_loss() {
    let z = Tensor::from_f64(&[0.6, 0.8, 1.0, 0.0], &[2, 2], DType::F64).unwrap();
    let (loss, dz) = ntxent_forward(&z, None, 0.1).unwrap();
    assert_eq!(loss.item().unwrap(), 0.0);
    assert!(dz.to_vec_f64().unwrap().iter().all(|&g| g == 0.0));
}

#[test]
fn bad_inputs_are_errors_naming_the_op() {
    let z = |shape: &[usize]| Tensor::zeros(shape, DType::F64, Device::Cpu).unwrap();
    let q = z(&[3, 5]);
    let cases: Vec<(Result<(Tensor, Tensor)>, &str)> = vec![
        (ntxent_forward(&z(&[4]), None, 0.1), "rank 2"),
        (ntxent_forward(&z(&[3, 4]), None, 0.1), "even"),
        (ntxent_forward(&z(&[0, 4]), None, 0.1), "even"),
        (ntxent_forward(&z(&[2, 0]), None, 0.1), "width 0"),
        (ntxent_forward(&z(&[4, 4]), Some(&q), 0.1), "queue"),
        (ntxent_forward(&z(&[4, 5]), Some(&z(&[5])), 0.1), "rank 2"),
        (ntxent_forward(&z(&[4, 4]), None, 0.0), "temperature"),
        (ntxent_forward(&z(&[4, 4]), None, f64::NAN), "temperature"),
        (
            ntxent_forward(&z(&[4, 5]), Some(&q.to_dtype(DType::F32).unwrap()), 0.1),
            "dtype",
        ),
    ];
    for (i, (r, want)) in cases.into_iter().enumerate() {
        let e = r.expect_err("bad input accepted").to_string();
        assert!(e.contains("ntxent") && e.contains(want), "case {i}: {e}");
    }
    assert!(ntxent_accuracy(&z(&[3, 4]), None).is_err());
}
