use super::*;
use crate::testing::{check_gradients, fresh_seed, randn64};
use crate::{DType, Rng};

#[test]
fn gradients_match_finite_differences() {
    let seed = fresh_seed("softmax");
    let mut rng = Rng::new(seed);
    for shape in [vec![3, 5], vec![1, 1], vec![2, 2, 4]] {
        let x = randn64(&shape, &mut rng);
        check_gradients("softmax", std::slice::from_ref(&x), 40, seed, |t, v| {
            softmax(t, &v[0])
        });
        check_gradients("log_softmax", &[x], 40, seed, |t, v| log_softmax(t, &v[0]));
    }
}

#[test]
fn stable_for_large_logits() {
    let x = Tensor::from_f64(&[1000.0, 0.0, -1000.0], &[1, 3], DType::F32).unwrap();
    let y = softmax_forward(&x).unwrap().to_vec_f64().unwrap();
    assert_eq!(y, vec![1.0, 0.0, 0.0]);
    let l = log_softmax_forward(&x).unwrap().to_vec_f64().unwrap();
    assert_eq!(l, vec![0.0, -1000.0, -2000.0]);
}
