use super::*;
use crate::testing::{assert_close, check_gradients, fresh_seed, load_fixture, randn64, tolerance};
use crate::{DType, Device, Rng};

fn labels_of(t: &Tensor) -> Vec<usize> {
    t.to_vec_f64()
        .unwrap()
        .iter()
        .map(|&y| y as usize)
        .collect()
}

#[test]
fn matches_pytorch_in_f64_and_f32() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/method_distill.safetensors");
    let f = load_fixture(&path);
    let mut cases = 0;
    while let Some(s) = f.get(&format!("d{cases}.student")) {
        let d = format!("d{cases}");
        let spec = f[&format!("{d}.spec")].to_vec_f64().unwrap();
        let spec = DistillSpec {
            alpha: spec[0],
            tau: spec[1],
        };
        let labels = f.get(&format!("{d}.labels")).map(labels_of);
        for dt in [DType::F64, DType::F32] {
            let (st, tt) = (
                s.to_dtype(dt).unwrap(),
                f[&format!("{d}.teacher")].to_dtype(dt).unwrap(),
            );
            let (loss, ds) = distill_forward(&st, &tt, labels.as_deref(), spec).unwrap();
            // k = the classes (each row's log-sum-exps and cross-entropy sums), depth 3
            // (log-sum-exp → row sum → batch mean); logits are divided by τ, which scales their
            // rounding error by 1/τ; f32 inputs are rounded themselves (factor 2).
            let c = s.shape()[1].max(s.shape()[0]);
            let t = tolerance(dt, c, 3)
                * (1.0 / spec.tau).max(1.0)
                * if dt == DType::F32 { 2.0 } else { 1.0 };
            assert_close(
                &format!("{d} loss {}", dt.name()),
                &loss,
                &f[&format!("{d}.loss")],
                t,
            );
            assert_close(
                &format!("{d} dstudent {}", dt.name()),
                &ds,
                &f[&format!("{d}.dstudent")],
                t,
            );
        }
        cases += 1;
    }
    assert_eq!(cases, 4, "fixture cases");
}

#[test]
fn gradients_match_finite_differences() {
    let seed = fresh_seed("distill");
    let mut rng = Rng::new(seed);
    for (b, c, alpha, tau, labelled) in [
        (3, 5, 1.0, 0.5, false),
        (4, 3, 0.5, 2.0, true),
        (2, 6, 0.0, 1.0, true),
        (5, 4, 0.3, 0.2, true),
    ] {
        let s = randn64(&[b, c], &mut rng);
        let t = randn64(&[b, c], &mut rng);
        let labels: Option<Vec<usize>> = labelled.then(|| (0..b).map(|_| rng.below(c)).collect());
        let spec = DistillSpec { alpha, tau };
        check_gradients("distill", &[s], 40, seed, |tape, v| {
            distill(tape, &v[0], &t, labels.as_deref(), spec)
        });
    }
}

#[test]
fn student_equal_to_teacher_leaves_only_the_entropy() {
    let tau = 0.7;
    let x = Tensor::from_f64(&[1.0, -2.0, 0.5, 0.0, 0.0, 0.0], &[2, 3], DType::F64).unwrap();
    let (loss, ds) = distill_forward(&x, &x, None, DistillSpec::unlabelled(tau)).unwrap();
    assert!(ds.to_vec_f64().unwrap().iter().all(|g| g.abs() < 1e-15));
    // The loss is then the mean entropy of the teacher rows; the uniform row has log 3.
    let e: Vec<f64> = [1.0f64, -2.0, 0.5]
        .iter()
        .map(|v| (v / tau).exp())
        .collect();
    let z: f64 = e.iter().sum();
    let h1: f64 = -e.iter().map(|v| v / z * (v / z).ln()).sum::<f64>();
    assert!((loss.item().unwrap() - (h1 + 3f64.ln()) / 2.0).abs() < 1e-14);
}

#[test]
fn bad_inputs_are_errors_naming_the_op() {
    let z = |shape: &[usize]| Tensor::zeros(shape, DType::F64, Device::Cpu).unwrap();
    let (s, spec) = (
        z(&[2, 3]),
        DistillSpec {
            alpha: 0.5,
            tau: 1.0,
        },
    );
    let cases = [
        (
            distill_forward(&z(&[6]), &z(&[6]), None, DistillSpec::unlabelled(1.0)),
            "rank 2",
        ),
        (
            distill_forward(&s, &z(&[2, 4]), None, DistillSpec::unlabelled(1.0)),
            "teacher",
        ),
        (
            distill_forward(&s, &s, None, DistillSpec::unlabelled(0.0)),
            "temperature",
        ),
        (
            distill_forward(
                &s,
                &s,
                Some(&[0, 1]),
                DistillSpec {
                    alpha: 1.5,
                    tau: 1.0,
                },
            ),
            "alpha",
        ),
        (distill_forward(&s, &s, None, spec), "no labels"),
        (distill_forward(&s, &s, Some(&[0]), spec), "1 labels"),
        (distill_forward(&s, &s, Some(&[0, 3]), spec), "label 3"),
        (
            distill_forward(
                &s,
                &s.to_dtype(DType::F32).unwrap(),
                None,
                DistillSpec::unlabelled(1.0),
            ),
            "dtype",
        ),
    ];
    for (i, (r, want)) in cases.into_iter().enumerate() {
        let e = r.expect_err("bad input accepted").to_string();
        assert!(e.contains("distill") && e.contains(want), "case {i}: {e}");
    }
}
