use super::*;
use crate::testing::{assert_close, check_gradients, fresh_seed, randn64, tolerance};
use crate::{DType, Rng};

/// Direct definition of the convolution, independent of im2col and GEMM.
fn naive(x: &Tensor, w: &Tensor, s: &Conv2dSpec) -> Tensor {
    let g = Geometry::new(x.shape(), w.shape(), s).unwrap();
    let (xs, ws) = (x.to_vec_f64().unwrap(), w.to_vec_f64().unwrap());
    let mut y = vec![0.0; g.n * g.ho * g.wo * g.cout];
    for n in 0..g.n {
        for oh in 0..g.ho {
            for ow in 0..g.wo {
                for o in 0..g.cout {
                    let grp = o / g.cout_g;
                    let mut acc = 0.0;
                    for kh in 0..g.kh {
                        for kw in 0..g.kw {
                            let ih = (oh * g.sh + kh * g.dh) as isize - g.ph as isize;
                            let iw = (ow * g.sw + kw * g.dw) as isize - g.pw as isize;
                            if ih < 0 || iw < 0 || ih >= g.h as isize || iw >= g.w as isize {
                                continue;
                            }
                            for c in 0..g.cin_g {
                                let xi = ((n * g.h + ih as usize) * g.w + iw as usize) * g.cin
                                    + grp * g.cin_g
                                    + c;
                                let wi = ((o * g.kh + kh) * g.kw + kw) * g.cin_g + c;
                                acc += xs[xi] * ws[wi];
                            }
                        }
                    }
                    y[((n * g.ho + oh) * g.wo + ow) * g.cout + o] = acc;
                }
            }
        }
    }
    Tensor::from_f64(&y, &[g.n, g.ho, g.wo, g.cout], DType::F64).unwrap()
}

/// (input NHWC, weight KRSC, spec): stride 2, padding, groups, dilation, batch 1, odd sizes, 1x1.
fn cases() -> Vec<([usize; 4], [usize; 4], Conv2dSpec)> {
    vec![
        ([2, 5, 5, 3], [4, 3, 3, 3], Conv2dSpec::new(1, 1)),
        (
            [1, 7, 6, 4],
            [6, 3, 3, 2],
            Conv2dSpec::new(2, 1).with_groups(2),
        ),
        (
            [2, 6, 7, 2],
            [3, 3, 3, 2],
            Conv2dSpec::new(1, 2).with_dilation(2),
        ),
        ([3, 4, 4, 5], [7, 1, 1, 5], Conv2dSpec::new(1, 0)),
        ([2, 5, 4, 6], [4, 1, 1, 6], Conv2dSpec::new(2, 0)),
        ([1, 9, 9, 3], [2, 7, 7, 3], Conv2dSpec::new(2, 3)),
        (
            [2, 4, 4, 6],
            [6, 3, 3, 1],
            Conv2dSpec::new(1, 1).with_groups(6),
        ),
    ]
}

#[test]
fn forward_matches_direct_definition() {
    let seed = fresh_seed("conv2d forward");
    let mut rng = Rng::new(seed);
    for (xs, ws, s) in cases() {
        let x = randn64(&xs, &mut rng);
        let w = randn64(&ws, &mut rng);
        let want = naive(&x, &w, &s);
        let k = ws[1] * ws[2] * ws[3];
        assert_close(
            "conv2d f64",
            &conv2d_forward(&x, &w, &s).unwrap(),
            &want,
            tolerance(DType::F64, k, 1),
        );
        let (x32, w32) = (
            x.to_dtype(DType::F32).unwrap(),
            w.to_dtype(DType::F32).unwrap(),
        );
        // Inputs rounded to f32 add one rounding each; the tolerance covers the reduction.
        assert_close(
            "conv2d f32",
            &conv2d_forward(&x32, &w32, &s).unwrap(),
            &want,
            tolerance(DType::F32, k, 2),
        );
    }
}

#[test]
fn gradients_match_finite_differences() {
    let seed = fresh_seed("conv2d gradients");
    let mut rng = Rng::new(seed);
    for (xs, ws, s) in cases() {
        let x = randn64(&xs, &mut rng);
        let w = randn64(&ws, &mut rng);
        check_gradients("conv2d", &[x, w], 40, seed, |t, v| {
            conv2d(t, &v[0], &v[1], s)
        });
    }
}

#[test]
fn bad_shapes_are_errors() {
    let x = Tensor::zeros(&[1, 4, 4, 3], DType::F32, crate::Device::Cpu).unwrap();
    let w = Tensor::zeros(&[8, 3, 3, 4], DType::F32, crate::Device::Cpu).unwrap();
    let e = conv2d_forward(&x, &w, &Conv2dSpec::new(1, 1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("conv2d") && e.contains("[8, 3, 3, 4]"), "{e}");
    let w = Tensor::zeros(&[8, 9, 9, 3], DType::F32, crate::Device::Cpu).unwrap();
    assert!(conv2d_forward(&x, &w, &Conv2dSpec::new(1, 0)).is_err());
    let x3 = Tensor::zeros(&[4, 4, 3], DType::F32, crate::Device::Cpu).unwrap();
    assert!(conv2d_forward(&x3, &w, &Conv2dSpec::new(1, 0))
        .unwrap_err()
        .to_string()
        .contains("NHWC"));
}
