//! Device vs CPU parity of the elementwise ops and casts, forward and backward, on fresh random
//! inputs, f32 and bf16; the CPU computes in f32 from the same (bf16-rounded) inputs and the
//! tolerances come from the dtype (`testing::tolerance`).

use crate::autograd::Tape;
use crate::ops::elementwise as ew;
use crate::params::ParamStore;
use crate::testing::device::{both, check, check_sum, device_test, rand, randn, DTYPES};
use crate::testing::fresh_seed;
use crate::{DType, Device, Rng, Tensor};

fn elementwise_parity(dev: Device) {
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
        check_sum(
            "sum",
            dt,
            &ew::sum_all(&ga).unwrap(),
            &ew::sum_all(&a).unwrap(),
            &a,
        );
        // log's backward runs recip and mul on the device.
        let grad = |x: &Tensor, dy: &Tensor| {
            let mut tape = Tape::new();
            let v = tape.leaf(x.clone());
            let y = crate::ops::ln(&mut tape, &v).unwrap();
            let g = tape
                .backward_from(&[(&y, dy.clone())], &mut ParamStore::new(DType::F32, 0))
                .unwrap();
            g.get(&v).unwrap().clone()
        };
        check("log_backward", dt, &grad(&gp, &gb), &grad(&p, &b), 1, 2);
    }
}
device_test!(elementwise_parity);

fn elementwise_and_casts_cover_more_than_65535_blocks_of_work(dev: Device) {
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
device_test!(elementwise_and_casts_cover_more_than_65535_blocks_of_work);
