//! Device vs CPU parity of max, average and global average pooling, forward and backward,
//! f32 and bf16.

use crate::ops::{pool, AvgPoolSpec, PoolSpec};
use crate::testing::device::{both, check, device_test, randn, DTYPES};
use crate::testing::fresh_seed;
use crate::{Device, Rng};

fn pool_parity(dev: Device) {
    let mut rng = Rng::new(fresh_seed("pool"));
    for dt in DTYPES {
        // The last case is post-ReLU-like: most windows tie (zeros), and the first maximum
        // in window order must take the gradient on both sides.
        // 20 channels take the scalar path of the channel-group kernels, 16 and 24 the 8-wide.
        for (h, w, ties, c) in [(12, 12, false, 20), (11, 13, false, 16), (9, 10, true, 24)] {
            let mut x = randn(&[3, h, w, c], dt, &mut rng);
            if ties {
                let v: Vec<f64> = x.to_vec_f64().unwrap();
                let q: Vec<f64> = v.iter().map(|a| (a - 0.8).max(0.0).round()).collect();
                x = crate::Tensor::from_f64(&q, x.shape(), dt).unwrap();
            }
            let (x, gx) = both(&x, dev);
            // Symmetric (PyTorch), TF "SAME" (odd cell at the end) and padding leading on one
            // axis and trailing on the other.
            let skew = PoolSpec {
                kernel: 3,
                stride: 2,
                pad_h: (2, 0),
                pad_w: (0, 2),
            };
            for s in [
                PoolSpec::symmetric(3, 2, 1),
                PoolSpec::same_tf(h, w, 3, 2),
                skew,
            ] {
                let y = pool::max_pool2d_forward(&x, &s).unwrap();
                let gy = pool::max_pool2d_forward(&gx, &s).unwrap();
                check("max_pool", dt, &gy, &y, 1, 1);
                let (dy, gdy) = both(&randn(y.shape(), dt, &mut rng), dev);
                let want = pool::max_pool2d_backward(&x, &y, &dy, &s).unwrap();
                let got = pool::max_pool2d_backward(&gx, &gy, &gdy, &s).unwrap();
                check("max_pool_backward", dt, &got, &want, 4, 1);
            }
            let mut avg = vec![];
            for count_padding in [false, true] {
                for stride in [1, 2] {
                    let window = PoolSpec::same_tf(h, w, 2, stride);
                    avg.push(AvgPoolSpec {
                        window,
                        count_padding,
                    });
                }
                let window = PoolSpec {
                    kernel: 3,
                    stride: 2,
                    pad_h: (1, 2),
                    pad_w: (2, 0),
                };
                avg.push(AvgPoolSpec {
                    window,
                    count_padding,
                });
                // Tiling windows without padding: at odd sizes the last row and column are
                // in no window (their gradient is 0).
                avg.push(AvgPoolSpec {
                    window: PoolSpec::symmetric(2, 2, 0),
                    count_padding,
                });
            }
            for s in avg {
                let y = pool::avg_pool2d_forward(&x, &s).unwrap();
                let gy = pool::avg_pool2d_forward(&gx, &s).unwrap();
                check("avg_pool2d", dt, &gy, &y, 9, 1);
                let (dy, gdy) = both(&randn(y.shape(), dt, &mut rng), dev);
                let want = pool::avg_pool2d_backward(&dy, &s, x.shape()).unwrap();
                let got = pool::avg_pool2d_backward(&gdy, &s, x.shape()).unwrap();
                check("avg_pool2d_backward", dt, &got, &want, 9, 1);
            }
            let y = pool::global_avg_pool_forward(&x).unwrap();
            check(
                "global_avg_pool",
                dt,
                &pool::global_avg_pool_forward(&gx).unwrap(),
                &y,
                h * w,
                1,
            );
            let (dy, gdy) = both(&randn(y.shape(), dt, &mut rng), dev);
            let want = pool::global_avg_pool_backward(&dy, x.shape()).unwrap();
            check(
                "global_avg_pool_backward",
                dt,
                &pool::global_avg_pool_backward(&gdy, x.shape()).unwrap(),
                &want,
                1,
                1,
            );
        }
    }
}
device_test!(pool_parity);
