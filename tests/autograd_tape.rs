//! Tape semantics: parameter gradients accumulate across backward passes, activation gradients
//! from several consumers are summed, inference mode records nothing, misuse is an error.

use simclr::autograd::Tape;
use simclr::ops;
use simclr::params::{Init, ParamKind, ParamStore};
use simclr::{DType, Device, Rng, Tensor};

fn store_with_weight() -> (ParamStore, simclr::params::ParamId) {
    let mut s = ParamStore::new(DType::F64, 3);
    let id = s
        .add("w", &[2, 3], ParamKind::Weight, Init::Normal { std: 1.0 })
        .unwrap();
    (s, id)
}

#[test]
fn parameter_gradients_accumulate_until_cleared() {
    let (mut store, id) = store_with_weight();
    let x = Tensor::randn(&[4, 3], 1.0, DType::F64, &mut Rng::new(1)).unwrap();
    let step = |store: &mut ParamStore| {
        let mut tape = Tape::new();
        let w = tape.param(store, id).unwrap();
        let xv = tape.constant(x.clone());
        let y = ops::linear(&mut tape, &xv, &w, None).unwrap();
        let l = ops::sum(&mut tape, &y).unwrap();
        tape.backward(&l, store).unwrap();
    };
    step(&mut store);
    let g1 = store.grad(id).unwrap().to_vec_f64().unwrap();
    step(&mut store);
    let g2 = store.grad(id).unwrap().to_vec_f64().unwrap();
    for (a, b) in g1.iter().zip(&g2) {
        assert!(
            (2.0 * a - b).abs() < 1e-12,
            "second backward must add: {a} then {b}"
        );
    }
    store.zero_grads();
    assert!(store.grad(id).is_none());
}

#[test]
fn a_value_used_twice_gets_the_sum_of_both_gradients() {
    let mut tape = Tape::new();
    let x = tape.leaf(Tensor::from_f64(&[1.0, -2.0, 3.0], &[3], DType::F64).unwrap());
    let a = ops::scale(&mut tape, &x, 2.0).unwrap();
    let b = ops::mul(&mut tape, &x, &x).unwrap();
    let s = ops::add(&mut tape, &a, &b).unwrap();
    let l = ops::sum(&mut tape, &s).unwrap();
    let g = tape
        .backward(&l, &mut ParamStore::new(DType::F64, 0))
        .unwrap();
    // d/dx (2x + x²) = 2 + 2x.
    assert_eq!(
        g.get(&x).unwrap().to_vec_f64().unwrap(),
        vec![4.0, -2.0, 8.0]
    );
}

#[test]
fn inference_mode_records_nothing_and_refuses_backward() {
    let (mut store, id) = store_with_weight();
    let mut tape = Tape::inference();
    let w = tape.param(&store, id).unwrap();
    let x = tape.leaf(Tensor::zeros(&[1, 3], DType::F64, Device::Cpu).unwrap());
    let y = ops::linear(&mut tape, &x, &w, None).unwrap();
    let l = ops::sum(&mut tape, &y).unwrap();
    assert!(tape.is_empty());
    assert!(!l.requires_grad());
    assert!(tape
        .backward(&l, &mut store)
        .unwrap_err()
        .to_string()
        .contains("inference"));
}

#[test]
fn constants_are_not_recorded_and_non_scalar_backward_is_an_error() {
    let mut tape = Tape::new();
    let c = tape.constant(Tensor::zeros(&[2], DType::F64, Device::Cpu).unwrap());
    let d = ops::relu(&mut tape, &c).unwrap();
    assert!(tape.is_empty(), "an op on constants needs no backward");
    let x = tape.leaf(Tensor::zeros(&[2], DType::F64, Device::Cpu).unwrap());
    let y = ops::add(&mut tape, &x, &d).unwrap();
    let e = tape
        .backward(&y, &mut ParamStore::new(DType::F64, 0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("scalar"), "{e}");
}
