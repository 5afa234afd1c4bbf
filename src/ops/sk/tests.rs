use super::*;
use crate::testing::{check_gradients, fresh_seed, randn64};
use crate::{DType, Rng};

#[test]
fn sk_pool_and_mix_gradients() {
    let seed = fresh_seed("sk");
    let mut rng = Rng::new(seed);
    for (n, h, w, c) in [(2, 3, 3, 4), (1, 5, 4, 3), (3, 1, 1, 2)] {
        let u = randn64(&[n, h, w, 2 * c], &mut rng);
        let z = Tensor::randn(&[n, 2 * c], 2.0, DType::F64, &mut rng).unwrap();
        check_gradients("sk_pool", std::slice::from_ref(&u), 40, seed, |t, v| {
            sk_pool(t, &v[0])
        });
        check_gradients("sk_mix", &[u, z], 40, seed, |t, v| sk_mix(t, &v[0], &v[1]));
    }
}

#[test]
fn sk_mix_is_convex_combination() {
    // Equal logits give the average of the two paths.
    let u = Tensor::from_f64(&[1.0, 3.0, 10.0, 20.0], &[1, 1, 1, 4], DType::F64).unwrap();
    let z = Tensor::from_f64(&[0.5, 0.5, 0.5, 0.5], &[1, 4], DType::F64).unwrap();
    assert_eq!(
        sk_mix_forward(&u, &z).unwrap().to_vec_f64().unwrap(),
        vec![5.5, 11.5]
    );
    assert_eq!(
        sk_pool_forward(&u).unwrap().to_vec_f64().unwrap(),
        vec![11.0, 23.0]
    );
}
