use super::*;
use crate::testing::{check_gradients, fresh_seed, randn64};
use crate::{DType, Rng};

#[test]
fn max_pool_forward_and_gradients() {
    let seed = fresh_seed("max_pool");
    let mut rng = Rng::new(seed);
    let x = Tensor::from_f64(
        &[1., 5., 2., 3., 9., 4., 0., 7., 8.],
        &[1, 3, 3, 1],
        DType::F64,
    )
    .unwrap();
    let y = max_pool2d_forward(
        &x,
        &PoolSpec {
            kernel: 3,
            stride: 2,
            padding: 1,
        },
    )
    .unwrap();
    assert_eq!(y.shape(), &[1, 2, 2, 1]);
    assert_eq!(y.to_vec_f64().unwrap(), vec![9., 9., 9., 9.]);
    for (shape, s) in [
        (
            [2, 7, 6, 3],
            PoolSpec {
                kernel: 3,
                stride: 2,
                padding: 1,
            },
        ),
        (
            [1, 8, 8, 2],
            PoolSpec {
                kernel: 3,
                stride: 2,
                padding: 1,
            },
        ),
        (
            [2, 5, 5, 2],
            PoolSpec {
                kernel: 2,
                stride: 2,
                padding: 0,
            },
        ),
    ] {
        // Gaussian entries are distinct with probability one, so the argmax is stable under h.
        let x = randn64(&shape, &mut rng);
        check_gradients("max_pool2d", &[x], 40, seed, |t, v| max_pool2d(t, &v[0], s));
    }
}

#[test]
fn avg_pool2x2_values_and_gradients() {
    let seed = fresh_seed("avg_pool2x2");
    let mut rng = Rng::new(seed);
    let x = Tensor::from_f64(
        &[1., 2., 3., 4., 5., 6., 7., 8., 9.],
        &[1, 3, 3, 1],
        DType::F64,
    )
    .unwrap();
    // Stride 2 on 3x3: windows {1,2,4,5}, {3,6}, {7,8}, {9}.
    let y = avg_pool2x2_forward(&x, 2).unwrap().to_vec_f64().unwrap();
    assert_eq!(y, vec![3.0, 4.5, 7.5, 9.0]);
    let y1 = avg_pool2x2_forward(&x, 1).unwrap();
    assert_eq!(y1.shape(), &[1, 3, 3, 1]);
    assert_eq!(y1.to_vec_f64().unwrap()[0], 3.0);
    for shape in [[2, 6, 6, 3], [1, 5, 7, 2]] {
        for stride in [1, 2] {
            let x = randn64(&shape, &mut rng);
            check_gradients("avg_pool2x2", &[x], 40, seed, |t, v| {
                avg_pool2x2(t, &v[0], stride)
            });
        }
    }
}

#[test]
fn global_avg_pool_gradients() {
    let seed = fresh_seed("global_avg_pool");
    let mut rng = Rng::new(seed);
    for shape in [[2, 3, 4, 5], [1, 1, 1, 3]] {
        let x = randn64(&shape, &mut rng);
        check_gradients("global_avg_pool", &[x], 40, seed, |t, v| {
            global_avg_pool(t, &v[0])
        });
    }
}
