use super::*;
use crate::testing::{assert_close, check_gradients, fresh_seed, randn64, tolerance};
use crate::{DType, Rng};

#[test]
fn matmul_matches_definition_with_transposes() {
    let seed = fresh_seed("matmul");
    let mut rng = Rng::new(seed);
    let a = randn64(&[4, 7], &mut rng);
    let b = randn64(&[7, 3], &mut rng);
    let (av, bv) = (a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
    let mut want = vec![0.0; 12];
    for i in 0..4 {
        for j in 0..3 {
            want[i * 3 + j] = (0..7).map(|k| av[i * 7 + k] * bv[k * 3 + j]).sum();
        }
    }
    let want = Tensor::from_f64(&want, &[4, 3], DType::F64).unwrap();
    let tol = tolerance(DType::F64, 7, 1);
    assert_close(
        "ab",
        &matmul_forward(&a, &b, false, false).unwrap(),
        &want,
        tol,
    );
    let at = Tensor::from_f64(
        &(0..28).map(|i| av[(i % 4) * 7 + i / 4]).collect::<Vec<_>>(),
        &[7, 4],
        DType::F64,
    )
    .unwrap();
    let bt = Tensor::from_f64(
        &(0..21).map(|i| bv[(i % 7) * 3 + i / 7]).collect::<Vec<_>>(),
        &[3, 7],
        DType::F64,
    )
    .unwrap();
    assert_close(
        "aᵀb",
        &matmul_forward(&at, &b, true, false).unwrap(),
        &want,
        tol,
    );
    assert_close(
        "abᵀ",
        &matmul_forward(&a, &bt, false, true).unwrap(),
        &want,
        tol,
    );
    assert_close(
        "aᵀbᵀ",
        &matmul_forward(&at, &bt, true, true).unwrap(),
        &want,
        tol,
    );
}

#[test]
fn gradients_match_finite_differences() {
    let seed = fresh_seed("matmul grads");
    let mut rng = Rng::new(seed);
    let a = randn64(&[5, 3], &mut rng);
    let b = randn64(&[3, 4], &mut rng);
    check_gradients("matmul", &[a, b], 40, seed, |t, v| matmul(t, &v[0], &v[1]));
    for n in [1, 6] {
        let x = randn64(&[n, 5], &mut rng);
        let w = randn64(&[3, 5], &mut rng);
        let bias = randn64(&[3], &mut rng);
        check_gradients("linear", &[x.clone(), w.clone(), bias], 40, seed, |t, v| {
            linear(t, &v[0], &v[1], Some(&v[2]))
        });
        check_gradients("linear no bias", &[x, w], 40, seed, |t, v| {
            linear(t, &v[0], &v[1], None)
        });
    }
}

#[test]
fn shape_errors_name_the_op() {
    let a = randn64(&[2, 3], &mut Rng::new(1));
    let e = matmul_forward(&a, &a, false, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("matmul") && e.contains("[2, 3]"), "{e}");
}
