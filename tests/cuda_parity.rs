//! CPU vs CUDA parity of every op, forward and backward, on fresh random inputs, in f32 and
//! bf16. The CPU computes in f32 from the same (bf16-rounded) inputs; tolerances come from the
//! dtype (`testing::tolerance`). Without a usable GPU each test prints `skipped: <reason>`.
#![cfg(feature = "cuda")]

#[path = "cuda_common.rs"]
mod common;
use common::{both, check, gpu, rand, randn, DTYPES};

use simclr::autograd::Tape;
use simclr::ops::{channels, elementwise as ew, loss, matmul, normalize};
use simclr::ops::{pool, sk, softmax, AvgPoolSpec, PoolSpec};
use simclr::params::ParamStore;
use simclr::testing::fresh_seed;
use simclr::{DType, Device, Rng, Tensor};

#[test]
fn availability_never_panics() {
    let ok = simclr::cuda_available();
    let reason = simclr::cuda_unavailable_reason();
    assert!(ok || !reason.is_empty());
    println!("cuda available: {ok}; {reason}");
}

#[test]
fn transfers_and_casts_round_trip() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(fresh_seed("transfers"));
    for dt in DTYPES {
        let x = randn(&[3, 5, 7], dt, &mut rng);
        let g = x.to_device(dev).unwrap();
        assert_eq!(g.dtype(), dt);
        assert_eq!(
            g.to_vec_f64().unwrap(),
            x.to_vec_f64().unwrap(),
            "{}",
            dt.name()
        );
    }
    // Chunks of 8 and a tail of 3.
    let x = randn(&[1003], DType::F32, &mut rng);
    let down = x.to_device(dev).unwrap().to_dtype(DType::BF16).unwrap();
    assert_eq!(
        down.to_vec_f64().unwrap(),
        x.to_dtype(DType::BF16).unwrap().to_vec_f64().unwrap()
    );
    let up = down.to_dtype(DType::F32).unwrap();
    assert_eq!(up.to_vec_f64().unwrap(), down.to_vec_f64().unwrap());
    assert!(
        Tensor::zeros(&[2], DType::F64, dev).is_err(),
        "f64 must be rejected on the GPU"
    );
}

#[test]
fn elementwise_parity() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(fresh_seed("elementwise"));
    // Chunks of 8 and a tail of 4 over several blocks; a tail alone; chunks only.
    let shapes: [&[usize]; 3] = [&[4, 9, 7, 33], &[7], &[3, 4096]];
    for (dt, s) in DTYPES
        .iter()
        .flat_map(|&dt| shapes.iter().map(move |&s| (dt, s)))
    {
        let (a, ga) = both(&randn(s, dt, &mut rng), dev);
        let (b, gb) = both(&randn(s, dt, &mut rng), dev);
        let (p, gp) = both(&rand(s, dt, &mut rng, 0.3, 1.5), dev);
        check(
            "add",
            dt,
            &ew::add_forward(&ga, &gb).unwrap(),
            &ew::add_forward(&a, &b).unwrap(),
            1,
            1,
        );
        check(
            "sub",
            dt,
            &ew::sub_forward(&ga, &gb).unwrap(),
            &ew::sub_forward(&a, &b).unwrap(),
            1,
            1,
        );
        check(
            "mul",
            dt,
            &ew::mul_forward(&ga, &gb).unwrap(),
            &ew::mul_forward(&a, &b).unwrap(),
            1,
            1,
        );
        check(
            "scale",
            dt,
            &ew::scale_forward(&ga, -0.37).unwrap(),
            &ew::scale_forward(&a, -0.37).unwrap(),
            1,
            1,
        );
        check(
            "relu",
            dt,
            &ew::relu_forward(&ga).unwrap(),
            &ew::relu_forward(&a).unwrap(),
            1,
            1,
        );
        check(
            "relu_backward",
            dt,
            &ew::relu_backward(&ga, &gb).unwrap(),
            &ew::relu_backward(&a, &b).unwrap(),
            1,
            1,
        );
        check(
            "exp",
            dt,
            &ew::exp_forward(&ga).unwrap(),
            &ew::exp_forward(&a).unwrap(),
            1,
            2,
        );
        check(
            "ln",
            dt,
            &ew::ln_forward(&gp).unwrap(),
            &ew::ln_forward(&p).unwrap(),
            1,
            2,
        );
        check(
            "sum",
            dt,
            &ew::sum_all(&ga).unwrap(),
            &ew::sum_all(&a).unwrap(),
            a.numel(),
            1,
        );
        // log's backward runs recip and mul on the device.
        let grad = |x: &Tensor, dy: &Tensor| {
            let mut tape = Tape::new();
            let v = tape.leaf(x.clone());
            let y = simclr::ops::ln(&mut tape, &v).unwrap();
            let g = tape
                .backward_from(&[(&y, dy.clone())], &mut ParamStore::new(DType::F32, 0))
                .unwrap();
            g.get(&v).unwrap().clone()
        };
        check("log_backward", dt, &grad(&gp, &gb), &grad(&p, &b), 1, 2);
    }
}

#[test]
fn elementwise_and_casts_cover_more_than_65535_blocks_of_work() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(fresh_seed("elementwise_big"));
    // 2^24 + 5 elements: 65,536 blocks of 256 elements, and a tail of 5 after the chunks of 8.
    let n = (1 << 24) + 5;
    let (a, ga) = both(&randn(&[n], DType::BF16, &mut rng), dev);
    let (b, gb) = both(&randn(&[n], DType::BF16, &mut rng), dev);
    let got = ew::add_forward(&ga, &gb).unwrap();
    check(
        "add, 2^24 + 5 elements",
        DType::BF16,
        &got,
        &ew::add_forward(&a, &b).unwrap(),
        1,
        1,
    );
    // bf16 → f32 is exact and f32 → bf16 rounds what was bf16: the round trip is the identity.
    let up = got.to_dtype(DType::F32).unwrap();
    assert_eq!(
        up.to_vec_f64().unwrap(),
        got.to_vec_f64().unwrap(),
        "bf16 -> f32"
    );
    let back = up.to_dtype(DType::BF16).unwrap();
    assert_eq!(
        back.to_vec_f64().unwrap(),
        got.to_vec_f64().unwrap(),
        "cast round trip, 2^24 + 5 elements"
    );
}

#[test]
fn matmul_parity() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(fresh_seed("matmul"));
    for dt in DTYPES {
        let (m, k, n) = (37, 300, 65);
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let sa = if ta { [k, m] } else { [m, k] };
            let sb = if tb { [n, k] } else { [k, n] };
            let (a, ga) = both(&randn(&sa, dt, &mut rng), dev);
            let (b, gb) = both(&randn(&sb, dt, &mut rng), dev);
            let want = matmul::matmul_forward(&a, &b, ta, tb).unwrap();
            let got = matmul::matmul_forward(&ga, &gb, ta, tb).unwrap();
            check(&format!("matmul ta={ta} tb={tb}"), dt, &got, &want, k, 1);
        }
        let (x, gx) = both(&randn(&[50, 70], dt, &mut rng), dev);
        let (b, gb) = both(&randn(&[70], dt, &mut rng), dev);
        check(
            "add_bias",
            dt,
            &matmul::add_bias_forward(&gx, &gb).unwrap(),
            &matmul::add_bias_forward(&x, &b).unwrap(),
            1,
            1,
        );
        check(
            "sum_rows",
            dt,
            &matmul::sum_rows_forward(&gx).unwrap(),
            &matmul::sum_rows_forward(&x).unwrap(),
            50,
            1,
        );
    }
}

#[test]
fn pool_parity() {
    let Some(dev) = gpu() else { return };
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
                x = simclr::Tensor::from_f64(&q, x.shape(), dt).unwrap();
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

#[test]
fn softmax_loss_normalize_parity() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(fresh_seed("softmax"));
    for dt in DTYPES {
        for (n, c) in [(16, 10), (9, 1500)] {
            let (x, gx) = both(&rand(&[n, c], dt, &mut rng, 3.0, 0.0), dev);
            let (dy, gdy) = both(&randn(&[n, c], dt, &mut rng), dev);
            let y = softmax::softmax_forward(&x).unwrap();
            let gy = softmax::softmax_forward(&gx).unwrap();
            check("softmax", dt, &gy, &y, c, 2);
            let (yb, _) = both(&gy.to_device(Device::Cpu).unwrap(), dev);
            check(
                "softmax_backward",
                dt,
                &softmax::softmax_backward(&gy, &gdy).unwrap(),
                &softmax::softmax_backward(&yb, &dy).unwrap(),
                c,
                2,
            );
            let y = softmax::log_softmax_forward(&x).unwrap();
            let gy = softmax::log_softmax_forward(&gx).unwrap();
            check("log_softmax", dt, &gy, &y, c, 2);
            let (yb, _) = both(&gy.to_device(Device::Cpu).unwrap(), dev);
            check(
                "log_softmax_backward",
                dt,
                &softmax::log_softmax_backward(&gy, &gdy).unwrap(),
                &softmax::log_softmax_backward(&yb, &dy).unwrap(),
                c,
                2,
            );
            let labels: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
            let (l, g) = loss::cross_entropy_forward(&x, &labels).unwrap();
            let (gl, gg) = loss::cross_entropy_forward(&gx, &labels).unwrap();
            check("cross_entropy loss", dt, &gl, &l, n * c, 2);
            check("cross_entropy grad", dt, &gg, &g, c, 2);
            let y = normalize::l2_normalize_forward(&x).unwrap();
            check(
                "l2_normalize",
                dt,
                &normalize::l2_normalize_forward(&gx).unwrap(),
                &y,
                c,
                2,
            );
            let want = normalize::l2_normalize_backward(&x, &dy).unwrap();
            check(
                "l2_normalize_backward",
                dt,
                &normalize::l2_normalize_backward(&gx, &gdy).unwrap(),
                &want,
                c,
                3,
            );
        }
    }
}

#[test]
fn channels_and_sk_parity() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(fresh_seed("channels_sk"));
    for dt in DTYPES {
        // Widths and offsets off multiples of 8 (one column per thread), then on them (8).
        for (ca, cb, start, len) in [(7, 12, 4, 9), (16, 8, 8, 16)] {
            let (a, ga) = both(&randn(&[2, 5, 3, ca], dt, &mut rng), dev);
            let (b, gb) = both(&randn(&[2, 5, 3, cb], dt, &mut rng), dev);
            let cat = channels::concat_forward(&[&a, &b]).unwrap();
            let gcat = channels::concat_forward(&[&ga, &gb]).unwrap();
            check("concat_channels", dt, &gcat, &cat, 1, 1);
            check(
                "narrow_channels",
                dt,
                &channels::narrow_forward(&gcat, start, len).unwrap(),
                &channels::narrow_forward(&cat, start, len).unwrap(),
                1,
                1,
            );
        }

        let (n, h, w, c) = (3, 9, 7, 40);
        let (u, gu) = both(&randn(&[n, h, w, 2 * c], dt, &mut rng), dev);
        let (z, gz) = both(&randn(&[n, 2 * c], dt, &mut rng), dev);
        check(
            "sk_pool",
            dt,
            &sk::sk_pool_forward(&gu).unwrap(),
            &sk::sk_pool_forward(&u).unwrap(),
            2 * h * w,
            1,
        );
        let (dp, gdp) = both(&randn(&[n, c], dt, &mut rng), dev);
        check(
            "sk_pool_backward",
            dt,
            &sk::sk_pool_backward(&gdp, u.shape()).unwrap(),
            &sk::sk_pool_backward(&dp, u.shape()).unwrap(),
            1,
            1,
        );
        check(
            "sk_mix",
            dt,
            &sk::sk_mix_forward(&gu, &gz).unwrap(),
            &sk::sk_mix_forward(&u, &z).unwrap(),
            2,
            2,
        );
        let (dy, gdy) = both(&randn(&[n, h, w, c], dt, &mut rng), dev);
        let (du, dz) = sk::sk_mix_backward(&u, &z, &dy).unwrap();
        let (gdu, gdz) = sk::sk_mix_backward(&gu, &gz, &gdy).unwrap();
        check("sk_mix_backward du", dt, &gdu, &du, 1, 2);
        check("sk_mix_backward dz", dt, &gdz, &dz, h * w, 2);
    }
}

#[test]
fn sgd_update_parity() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(fresh_seed("sgd"));
    let (lr, mom, wd) = (0.1, 0.9, 1e-4);
    let w = randn(&[1000], DType::F32, &mut rng);
    let g1 = randn(&[1000], DType::F32, &mut rng);
    let g2 = randn(&[1000], DType::F32, &mut rng);
    // CPU reference of two momentum steps: v = g + wd·w (then m·v + g + wd·w), w −= lr·v.
    let step = |w: &Tensor, v: Option<&Tensor>, g: &Tensor| {
        let d = ew::add_forward(g, &ew::scale_forward(w, wd).unwrap()).unwrap();
        let v = match v {
            Some(v) => ew::add_forward(&ew::scale_forward(v, mom).unwrap(), &d).unwrap(),
            None => d,
        };
        (
            ew::sub_forward(w, &ew::scale_forward(&v, lr).unwrap()).unwrap(),
            v,
        )
    };
    let (w1, v1) = step(&w, None, &g1);
    let (w2, _) = step(&w1, Some(&v1), &g2);
    let mut gw = w.to_device(dev).unwrap();
    let shared = gw.clone(); // in-place updates must not write through to other holders
    let mut gv = Tensor::zeros(&[1000], DType::F32, dev).unwrap();
    for (i, g) in [&g1, &g2].into_iter().enumerate() {
        let gg = g.to_device(dev).unwrap();
        simclr::optim::cuda::sgd_update(&mut gw, &gg, Some(&mut gv), lr, mom, wd, i == 0).unwrap();
    }
    check("sgd_update", DType::F32, &gw, &w2, 2, 2);
    assert_eq!(shared.to_vec_f64().unwrap(), w.to_vec_f64().unwrap());
}
