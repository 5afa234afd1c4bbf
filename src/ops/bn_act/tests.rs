use super::*;
use crate::autograd::Tape;
use crate::ops::batch_norm::{batch_norm, batch_norm_eval_forward, batch_norm_train_forward};
use crate::ops::{add, relu};
use crate::testing::{assert_close, check_gradients, fresh_seed, randn64};
use crate::{DType, Rng};

fn train() -> BnMode<'static> {
    BnMode::Train {
        eps: 1e-5,
        running: None,
        comm: None,
    }
}

/// Moves `b` (or, when given, each element of `r`) so that every pre-activation `bn` + `r`,
/// where `bn` is the BN output [.., c] with `b` as it is, lies at least 1e-3 from ReLU's kink
/// at 0: a finite difference across the kink measures neither side's slope. The probes' steps
/// (about 6e-6) move a pre-activation by far less than that.
fn away_from_the_kink(bn: &Tensor, b: &mut Tensor, r: Option<&mut Tensor>) {
    const GAP: f64 = 1e-3;
    let pre = bn.to_vec_f64().unwrap();
    let mut bs = b.to_vec_f64().unwrap();
    let c = bs.len();
    match r {
        None => {
            for (ch, beta) in bs.iter_mut().enumerate() {
                let mut shift = 0.0;
                while pre
                    .iter()
                    .skip(ch)
                    .step_by(c)
                    .any(|p| (p + shift).abs() < GAP)
                {
                    shift += 3.0 * GAP;
                }
                *beta += shift;
            }
        }
        Some(r) => {
            let mut rs = r.to_vec_f64().unwrap();
            for (v, p) in rs.iter_mut().zip(&pre) {
                if (p + *v).abs() < GAP {
                    *v += 3.0 * GAP;
                }
            }
            *r = Tensor::from_f64(&rs, r.shape(), DType::F64).unwrap();
        }
    }
    *b = Tensor::from_f64(&bs, b.shape(), DType::F64).unwrap();
}

#[test]
fn gradients_match_finite_differences() {
    let seed = fresh_seed("bn_act_gradients");
    let mut rng = Rng::new(seed);
    let (x, mut r) = (
        randn64(&[2, 3, 2, 5], &mut rng),
        randn64(&[2, 3, 2, 5], &mut rng),
    );
    let (g, mut b) = (randn64(&[5], &mut rng), randn64(&[5], &mut rng));
    let bn = batch_norm_train_forward(&x, &g, Some(&b), 1e-5).unwrap().0;
    let mut b_add = b.clone();
    away_from_the_kink(&bn, &mut b, None);
    away_from_the_kink(&bn, &mut b_add, Some(&mut r));
    check_gradients(
        "batch_norm_relu",
        &[x.clone(), g.clone(), b.clone()],
        40,
        seed,
        |t, v| Ok(batch_norm_relu(t, &v[0], &v[1], &v[2], train())?.0),
    );
    check_gradients(
        "batch_norm_add_relu",
        &[x, r, g, b_add],
        40,
        seed,
        |t, v| Ok(batch_norm_add_relu(t, &v[0], &v[1], &v[2], &v[3], train())?.0),
    );
}

#[test]
fn eval_mode_gradients_match_finite_differences() {
    let seed = fresh_seed("bn_act_eval_gradients");
    let mut rng = Rng::new(seed);
    let x = randn64(&[6, 4], &mut rng);
    let (g, b, mean) = (
        randn64(&[4], &mut rng),
        randn64(&[4], &mut rng),
        randn64(&[4], &mut rng),
    );
    let var = Tensor::from_f64(&[0.5, 1.0, 2.0, 0.1], &[4], DType::F64).unwrap();
    let mut b = b;
    let bn = batch_norm_eval_forward(&x, &g, Some(&b), &mean, &var, 1e-5)
        .unwrap()
        .0;
    away_from_the_kink(&bn, &mut b, None);
    check_gradients("batch_norm_relu eval", &[x, g, b], 30, seed, |t, v| {
        let mode = BnMode::Eval {
            mean: &mean,
            var: &var,
            eps: 1e-5,
        };
        Ok(batch_norm_relu(t, &v[0], &v[1], &v[2], mode)?.0)
    });
}

#[test]
fn equals_the_unfused_composition() {
    let mut rng = Rng::new(fresh_seed("bn_act_unfused"));
    let (x, r) = (randn64(&[3, 4, 7], &mut rng), randn64(&[3, 4, 7], &mut rng));
    let (g, b) = (randn64(&[7], &mut rng), randn64(&[7], &mut rng));
    let mut t = Tape::new();
    let (xv, rv, gv, bv) = (t.leaf(x), t.leaf(r), t.leaf(g), t.leaf(b));
    let (fused, stats) = batch_norm_add_relu(&mut t, &xv, &rv, &gv, &bv, train()).unwrap();
    let (bn, ref_stats) = batch_norm(&mut t, &xv, &gv, Some(&bv), train()).unwrap();
    let sum = add(&mut t, &bn, &rv).unwrap();
    let unfused = relu(&mut t, &sum).unwrap();
    assert_close("add_relu", fused.value(), unfused.value(), 1e-12);
    let (s, rs) = (stats.unwrap(), ref_stats.unwrap());
    assert_close("mean", &s.mean, &rs.mean, 1e-12);
    assert_close("var", &s.var_unbiased, &rs.var_unbiased, 1e-12);
}

#[test]
fn bad_shapes_are_errors() {
    let x = Tensor::zeros(&[2, 3], DType::F32, crate::Device::Cpu).unwrap();
    let c2 = Tensor::zeros(&[2], DType::F32, crate::Device::Cpu).unwrap();
    let c3 = Tensor::zeros(&[3], DType::F32, crate::Device::Cpu).unwrap();
    let e = batch_norm_relu_forward(&x, &c2, &c3, &c3, &c3)
        .unwrap_err()
        .to_string();
    assert!(e.contains("gamma"), "{e}");
    let bad = Tensor::zeros(&[3, 2], DType::F32, crate::Device::Cpu).unwrap();
    assert!(batch_norm_add_relu_forward(&x, &bad, &c3, &c3, &c3, &c3).is_err());
}
