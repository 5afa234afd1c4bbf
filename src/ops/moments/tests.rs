//! The packed statistics on the CPU: packing then combining the rows of several parts gives the
//! statistics of their concatenation (against the two-pass f64 formulas), and the share scales.

use super::*;
use crate::testing::{assert_close, fresh_seed, tolerance};
use crate::{DType, Rng};

/// Two-pass mean and biased variance of [m, c] rows, in f64.
fn two_pass(rows: &[f64], c: usize) -> (Vec<f64>, Vec<f64>) {
    let m = rows.len() / c;
    let col = |j: usize| (0..m).map(move |i| rows[i * c + j]);
    let mean: Vec<f64> = (0..c).map(|j| col(j).sum::<f64>() / m as f64).collect();
    let var = (0..c)
        .map(|j| col(j).map(|x| (x - mean[j]).powi(2)).sum::<f64>() / m as f64)
        .collect();
    (mean, var)
}

#[test]
fn packed_parts_combine_to_the_statistics_of_the_whole() {
    let seed = fresh_seed("moments_pack_combine");
    let mut rng = Rng::new(seed);
    let c = 6;
    for dtype in [DType::F32, DType::F64] {
        for parts in [vec![3, 5], vec![1, 4, 2], vec![7]] {
            let data: Vec<Vec<f64>> = parts
                .iter()
                .map(|&m| (0..m * c).map(|_| 5.0 + rng.normal()).collect())
                .collect();
            let packed: Vec<Tensor> = data
                .iter()
                .map(|d| {
                    let (mean, var) = two_pass(d, c);
                    let m = d.len() / c;
                    let unbias = m as f64 / (m.max(2) - 1) as f64;
                    let vu: Vec<f64> = var.iter().map(|v| v * unbias).collect();
                    let t = |v: &[f64]| Tensor::from_f64(v, &[c], dtype).unwrap();
                    moments_pack(&t(&mean), &t(&vu), m).unwrap()
                })
                .collect();
            let all = crate::comm::concat_rows(&packed).unwrap();
            let g = moments_combine(&all, parts[0]).unwrap();
            let whole = data.concat();
            let n = whole.len() / c;
            let (mean, var) = two_pass(&whole, c);
            let vu: Vec<f64> = var.iter().map(|v| v * n as f64 / (n - 1) as f64).collect();
            let t = |v: &[f64]| Tensor::from_f64(v, &[c], dtype).unwrap();
            let tol = tolerance(dtype, n, 4) * 5.0;
            let what = |s: &str| format!("{parts:?} {}: {s}", dtype.name());
            assert_close(&what("mean"), &g.mean, &t(&mean), tol);
            assert_close(&what("var"), &g.var, &t(&var), tol);
            assert_close(&what("var_u"), &g.var_unbiased, &t(&vu), tol);
            let share = parts[0] as f64 / n as f64;
            assert_close(
                &what("share"),
                &g.share,
                &Tensor::from_f64(&[share], &[1], dtype).unwrap(),
                tol,
            );
            let s = Tensor::randn(&[c], 1.0, dtype, &mut rng).unwrap();
            let want: Vec<f64> = s.to_vec_f64().unwrap().iter().map(|v| v * share).collect();
            let got = moments_scale(&s, &g.share).unwrap();
            assert_close(
                &what("scale"),
                &got,
                &Tensor::from_f64(&want, &[c], dtype).unwrap(),
                tol,
            );
        }
    }
}

#[test]
fn bad_shapes_and_counts_are_errors() {
    let t = Tensor::zeros(&[3], DType::F32, crate::Device::Cpu).unwrap();
    let e = moments_pack(&t, &t, 0).unwrap_err().to_string();
    assert!(e.contains("0 rows"), "{e}");
    let wrong = Tensor::zeros(&[2, 3], DType::F32, crate::Device::Cpu).unwrap();
    assert!(moments_pack(&wrong, &t, 4).is_err());
    let e = moments_combine(&wrong, 1).unwrap_err().to_string();
    assert!(e.contains("2·channels + 2"), "{e}");
    assert!(moments_scale(&t, &t).is_err());
}
