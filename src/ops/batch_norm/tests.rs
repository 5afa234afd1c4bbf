use super::*;
use crate::testing::{assert_close, check_gradients, fresh_seed, randn64, tolerance};
use crate::{DType, Rng};

#[test]
fn train_mode_normalises_each_channel() {
    let seed = fresh_seed("bn stats");
    let mut rng = Rng::new(seed);
    let x = Tensor::randn(&[4, 3, 5, 6], 3.0, DType::F64, &mut rng).unwrap();
    let gamma = Tensor::full(&[6], 1.0, DType::F64, crate::Device::Cpu).unwrap();
    let (y, _, _, var_u) = batch_norm_train_forward(&x, &gamma, None, 0.0).unwrap();
    let ys = y.to_vec_f64().unwrap();
    let xs = x.to_vec_f64().unwrap();
    let m = 60.0;
    for j in 0..6 {
        let col: Vec<f64> = ys.iter().skip(j).step_by(6).copied().collect();
        let mean: f64 = col.iter().sum::<f64>() / m;
        let var: f64 = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / m;
        assert!(
            mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12,
            "channel {j}: mean {mean} var {var}"
        );
        let xc: Vec<f64> = xs.iter().skip(j).step_by(6).copied().collect();
        let xm = xc.iter().sum::<f64>() / m;
        let xv = xc.iter().map(|v| (v - xm).powi(2)).sum::<f64>() / (m - 1.0);
        assert!((var_u.to_vec_f64().unwrap()[j] - xv).abs() < 1e-12 * xv);
    }
}

/// Random input whose channels each have a sample standard deviation in [0.5, 1.5] around a
/// random mean. Batch norm's k-th derivatives grow like 1/σ^k, so a channel of three samples
/// that happen to be nearly equal makes the finite-difference truncation error (h² times the
/// third derivative) explode; fixing the spread keeps the check about the gradient.
fn spread_input(shape: &[usize], rng: &mut Rng) -> Tensor {
    let c = *shape.last().unwrap();
    let mut v = randn64(shape, rng).to_vec_f64().unwrap();
    let m = v.len() / c;
    for j in 0..c {
        let mean = (0..m).map(|i| v[i * c + j]).sum::<f64>() / m as f64;
        let sd = ((0..m).map(|i| (v[i * c + j] - mean).powi(2)).sum::<f64>() / m as f64).sqrt();
        let (target_mean, target_sd) = (rng.normal(), rng.range(0.5, 1.5));
        for i in 0..m {
            v[i * c + j] = target_mean + (v[i * c + j] - mean) / sd * target_sd;
        }
    }
    Tensor::from_f64(&v, shape, DType::F64).unwrap()
}

#[test]
fn gradients_match_finite_differences() {
    let seed = fresh_seed("bn gradients");
    let mut rng = Rng::new(seed);
    for shape in [
        vec![2, 3, 3, 4],
        vec![5, 7],
        vec![1, 2, 2, 3],
        vec![3, 1, 1, 5],
    ] {
        let c = *shape.last().unwrap();
        let x = spread_input(&shape, &mut rng);
        let g = randn64(&[c], &mut rng);
        let b = randn64(&[c], &mut rng);
        check_gradients(
            "bn train",
            &[x.clone(), g.clone(), b.clone()],
            40,
            seed,
            |t, v| {
                Ok(batch_norm(
                    t,
                    &v[0],
                    &v[1],
                    Some(&v[2]),
                    BnMode::Train {
                        eps: 1e-5,
                        running: None,
                        comm: None,
                    },
                )?
                .0)
            },
        );
        check_gradients(
            "bn train no beta",
            &[x.clone(), g.clone()],
            40,
            seed,
            |t, v| {
                Ok(batch_norm(
                    t,
                    &v[0],
                    &v[1],
                    None,
                    BnMode::Train {
                        eps: 1e-5,
                        running: None,
                        comm: None,
                    },
                )?
                .0)
            },
        );
        let rm = randn64(&[c], &mut rng);
        let rv = Tensor::rand_uniform(&[c], 0.5, 2.0, DType::F64, &mut rng).unwrap();
        check_gradients("bn eval", &[x, g, b], 40, seed, |t, v| {
            Ok(batch_norm(
                t,
                &v[0],
                &v[1],
                Some(&v[2]),
                BnMode::Eval {
                    mean: &rm,
                    var: &rv,
                    eps: 1e-5,
                },
            )?
            .0)
        });
    }
}

#[test]
fn f32_matches_f64() {
    let seed = fresh_seed("bn f32");
    let mut rng = Rng::new(seed);
    let x = randn64(&[8, 4, 4, 16], &mut rng);
    let g = randn64(&[16], &mut rng);
    let dy = randn64(&[8, 4, 4, 16], &mut rng);
    let (y64, m64, i64_, _) = batch_norm_train_forward(&x, &g, None, 1e-5).unwrap();
    let (dx64, dg64, _) = batch_norm_backward(&x, &dy, &g, &m64, &i64_, true).unwrap();
    let f = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
    let (y32, m32, i32_, _) = batch_norm_train_forward(&f(&x), &f(&g), None, 1e-5).unwrap();
    let (dx32, dg32, _) = batch_norm_backward(&f(&x), &f(&dy), &f(&g), &m32, &i32_, true).unwrap();
    // Reductions over the 128 rows per channel, two chained passes (stats, then apply).
    let tol = tolerance(DType::F32, 128, 3);
    assert_close("bn y", &y32, &y64, tol);
    assert_close("bn dx", &dx32, &dx64, tol);
    assert_close("bn dgamma", &dg32, &dg64, tol);
}

#[test]
fn wrong_gamma_shape_is_an_error() {
    let x = Tensor::zeros(&[2, 3], DType::F32, crate::Device::Cpu).unwrap();
    let g = Tensor::zeros(&[4], DType::F32, crate::Device::Cpu).unwrap();
    let e = batch_norm_train_forward(&x, &g, None, 1e-5)
        .unwrap_err()
        .to_string();
    assert!(e.contains("gamma") && e.contains("[4]"), "{e}");
}
