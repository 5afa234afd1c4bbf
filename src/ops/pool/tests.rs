use super::*;
use crate::testing::{check_gradients, fresh_seed, randn64};
use crate::{DType, Rng};

#[test]
fn same_tf_padding_puts_the_odd_cell_at_the_end() {
    // 3x3/2 on 112 (the stem at 224 px): output 56, one cell padded, below/right only.
    let s = PoolSpec::same_tf(112, 15, 3, 2);
    assert_eq!((s.pad_h, s.pad_w), ((0, 1), (1, 1)));
    assert_eq!(s.output_size(112, 15), Some((56, 8)));
    // 2x2/1: one cell at the end; 2x2/2 on an even size: none.
    assert_eq!(PoolSpec::same_tf(7, 8, 2, 1).pad_h, (0, 1));
    assert_eq!(PoolSpec::same_tf(7, 8, 2, 2).pad_w, (0, 0));
    // A side padded by a whole window would leave windows without an image cell.
    let bad = PoolSpec {
        pad_h: (0, 3),
        ..PoolSpec::symmetric(3, 2, 1)
    };
    assert_eq!(bad.output_size(8, 8), None);
    let x = Tensor::from_f64(&[0.; 64], &[1, 8, 8, 1], DType::F32).unwrap();
    assert!(max_pool2d_forward(&x, &bad).is_err());
}

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
    let y = max_pool2d_forward(&x, &PoolSpec::symmetric(3, 2, 1)).unwrap();
    assert_eq!(y.shape(), &[1, 2, 2, 1]);
    assert_eq!(y.to_vec_f64().unwrap(), vec![9., 9., 9., 9.]);
    // TF "SAME" on 4x4: windows rows/cols {0,1,2} and {2,3}; symmetric: {0,1} and {1,2,3}.
    let x = Tensor::from_f64(
        &(0..16).map(|v| f64::from(v * 7 % 16)).collect::<Vec<_>>(),
        &[1, 4, 4, 1],
        DType::F64,
    )
    .unwrap();
    let same = max_pool2d_forward(&x, &PoolSpec::same_tf(4, 4, 3, 2)).unwrap();
    // x = [[0 7 14 5] [12 3 10 1] [8 15 6 13] [4 11 2 9]]
    assert_eq!(same.to_vec_f64().unwrap(), vec![15., 14., 15., 13.]);
    let sym = max_pool2d_forward(&x, &PoolSpec::symmetric(3, 2, 1)).unwrap();
    assert_eq!(sym.to_vec_f64().unwrap(), vec![12., 14., 15., 15.]);
    for (shape, s) in [
        ([2, 7, 6, 3], PoolSpec::symmetric(3, 2, 1)),
        ([1, 8, 8, 2], PoolSpec::symmetric(3, 2, 1)),
        ([2, 5, 5, 2], PoolSpec::symmetric(2, 2, 0)),
        ([2, 8, 6, 2], PoolSpec::same_tf(8, 6, 3, 2)),
        (
            [1, 7, 6, 2],
            PoolSpec {
                kernel: 3,
                stride: 2,
                pad_h: (2, 0),
                pad_w: (0, 2),
            },
        ),
    ] {
        // Gaussian entries are distinct with probability one, so the argmax is stable under h.
        let x = randn64(&shape, &mut rng);
        check_gradients("max_pool2d", &[x], 40, seed, |t, v| max_pool2d(t, &v[0], s));
    }
}

#[test]
fn avg_pool_values_and_gradients() {
    let seed = fresh_seed("avg_pool2d");
    let mut rng = Rng::new(seed);
    let x = Tensor::from_f64(
        &[1., 2., 3., 4., 5., 6., 7., 8., 9.],
        &[1, 3, 3, 1],
        DType::F64,
    )
    .unwrap();
    let pool = |stride, count_padding| AvgPoolSpec {
        window: PoolSpec::same_tf(3, 3, 2, stride),
        count_padding,
    };
    // Stride 2 on 3x3: windows {1,2,4,5}, {3,6}, {7,8}, {9}.
    let y = avg_pool2d_forward(&x, &pool(2, false)).unwrap();
    assert_eq!(y.to_vec_f64().unwrap(), vec![3.0, 4.5, 7.5, 9.0]);
    // The same windows with the padded zeros counted: every divisor is 4.
    let y = avg_pool2d_forward(&x, &pool(2, true)).unwrap();
    assert_eq!(y.to_vec_f64().unwrap(), vec![3.0, 2.25, 3.75, 2.25]);
    assert_eq!(AvgPoolSpec::resnet_d_shortcut(3, 3, 2), pool(2, true));
    assert_eq!(AvgPoolSpec::resnet_d_shortcut(3, 3, 1), pool(1, false));
    let y1 = avg_pool2d_forward(&x, &pool(1, false)).unwrap();
    assert_eq!(y1.shape(), &[1, 3, 3, 1]);
    assert_eq!(y1.to_vec_f64().unwrap()[0], 3.0);
    for shape in [[2, 6, 6, 3], [1, 5, 7, 2]] {
        for stride in [1, 2] {
            for count_padding in [false, true] {
                let s = AvgPoolSpec {
                    window: PoolSpec::same_tf(shape[1], shape[2], 2, stride),
                    count_padding,
                };
                let x = randn64(&shape, &mut rng);
                check_gradients("avg_pool2d", &[x], 40, seed, |t, v| avg_pool2d(t, &v[0], s));
            }
        }
    }
    // A 3x3/2 average with padding at the start and the end, counted and not.
    for count_padding in [false, true] {
        let s = AvgPoolSpec {
            window: PoolSpec {
                kernel: 3,
                stride: 2,
                pad_h: (1, 2),
                pad_w: (2, 0),
            },
            count_padding,
        };
        let x = randn64(&[2, 6, 7, 2], &mut rng);
        check_gradients("avg_pool2d", &[x], 40, seed, |t, v| avg_pool2d(t, &v[0], s));
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
