use super::*;
use crate::testing::{check_gradients, fresh_seed, randn64, randn64_away_from_zero};
use crate::Rng;

#[test]
fn elementwise_gradients_match_finite_differences() {
    let seed = fresh_seed("elementwise");
    let mut rng = Rng::new(seed);
    for shape in [vec![1], vec![3, 5], vec![2, 3, 4, 5]] {
        let a = randn64(&shape, &mut rng);
        let b = randn64(&shape, &mut rng);
        check_gradients("add", &[a.clone(), b.clone()], 32, seed, |t, v| {
            add(t, &v[0], &v[1])
        });
        check_gradients("sub", &[a.clone(), b.clone()], 32, seed, |t, v| {
            sub(t, &v[0], &v[1])
        });
        check_gradients("mul", &[a.clone(), b.clone()], 32, seed, |t, v| {
            mul(t, &v[0], &v[1])
        });
        check_gradients("scale", std::slice::from_ref(&a), 32, seed, |t, v| {
            scale(t, &v[0], -1.7)
        });
        check_gradients("exp", std::slice::from_ref(&a), 32, seed, |t, v| {
            exp(t, &v[0])
        });
        check_gradients("sum", std::slice::from_ref(&a), 32, seed, |t, v| {
            sum(t, &v[0])
        });
        check_gradients("mean", std::slice::from_ref(&a), 32, seed, |t, v| {
            mean(t, &v[0])
        });
        let pos = randn64_away_from_zero(&shape, 0.1, &mut rng);
        check_gradients("relu", std::slice::from_ref(&pos), 32, seed, |t, v| {
            relu(t, &v[0])
        });
        let abs = crate::Tensor::from_f64(
            &pos.to_vec_f64()
                .unwrap()
                .iter()
                .map(|x| x.abs())
                .collect::<Vec<_>>(),
            &shape,
            crate::DType::F64,
        )
        .unwrap();
        check_gradients("ln", &[abs], 32, seed, |t, v| ln(t, &v[0]));
    }
}

#[test]
fn mismatched_shapes_are_errors_naming_the_op() {
    let a = Tensor::zeros(&[2, 3], crate::DType::F32, crate::Device::Cpu).unwrap();
    let b = Tensor::zeros(&[3, 2], crate::DType::F32, crate::Device::Cpu).unwrap();
    let e = add_forward(&a, &b).unwrap_err().to_string();
    assert!(
        e.contains("add") && e.contains("[2, 3]") && e.contains("[3, 2]"),
        "{e}"
    );
    let c = Tensor::zeros(&[2, 3], crate::DType::F64, crate::Device::Cpu).unwrap();
    let e = mul_forward(&a, &c).unwrap_err().to_string();
    assert!(
        e.contains("mul") && e.contains("f32") && e.contains("f64"),
        "{e}"
    );
}
