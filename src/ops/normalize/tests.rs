use super::*;
use crate::testing::{check_gradients, fresh_seed, randn64};
use crate::Rng;

#[test]
fn unit_norm_rows_and_gradients() {
    let seed = fresh_seed("l2_normalize");
    let mut rng = Rng::new(seed);
    for shape in [vec![4, 8], vec![1, 3], vec![6, 1]] {
        let x = randn64(&shape, &mut rng);
        let y = l2_normalize_forward(&x).unwrap().to_vec_f64().unwrap();
        for row in y.chunks(*shape.last().unwrap()) {
            let n: f64 = row.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!((n - 1.0).abs() < 1e-14);
        }
        check_gradients("l2_normalize", &[x], 40, seed, |t, v| {
            l2_normalize(t, &v[0])
        });
    }
}
