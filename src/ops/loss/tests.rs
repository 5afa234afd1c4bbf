use super::*;
use crate::testing::{check_gradients, fresh_seed, randn64};
use crate::{DType, Rng};

#[test]
fn gradient_matches_finite_differences() {
    let seed = fresh_seed("cross_entropy");
    let mut rng = Rng::new(seed);
    for (n, k) in [(4, 3), (1, 5), (7, 10)] {
        let x = randn64(&[n, k], &mut rng);
        let labels: Vec<usize> = (0..n).map(|_| rng.below(k)).collect();
        check_gradients("cross_entropy", &[x], 40, seed, |t, v| {
            cross_entropy(t, &v[0], &labels)
        });
    }
}

#[test]
fn value_of_uniform_logits_is_log_k() {
    let x = Tensor::zeros(&[3, 4], DType::F64, crate::Device::Cpu).unwrap();
    let (l, _) = cross_entropy_forward(&x, &[0, 1, 3]).unwrap();
    assert!((l.item().unwrap() - 4f64.ln()).abs() < 1e-15);
}

#[test]
fn bad_labels_are_errors() {
    let x = Tensor::zeros(&[2, 4], DType::F32, crate::Device::Cpu).unwrap();
    let e = cross_entropy_forward(&x, &[0, 4]).unwrap_err().to_string();
    assert!(e.contains("label 4") && e.contains("4 classes"), "{e}");
    assert!(cross_entropy_forward(&x, &[0]).is_err());
}
