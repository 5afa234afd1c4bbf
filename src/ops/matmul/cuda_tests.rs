//! Device (cuBLAS) vs CPU parity of the matrix products, f32 and bf16.

use crate::ops::matmul;
use crate::testing::device::{both, check, device_test, randn, DTYPES};
use crate::testing::fresh_seed;
use crate::{Device, Rng};

fn matmul_parity(dev: Device) {
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
device_test!(matmul_parity);

/// The handle our products use disallows reduced-precision reductions: a bf16 product is its
/// f32 sum rounded once, never split-K partials each rounded to bf16 (which cuBLAS's default
/// math mode allows, and the emulated cuBLAS then does). Bitwise: the emulation is exact.
#[cfg(feature = "cuda-emu")]
#[test]
fn bf16_products_are_rounded_once() {
    use crate::DType;
    let dev = crate::testing::device::emulated();
    let mut rng = Rng::new(fresh_seed("matmul rounded once"));
    let (m, k, n) = (4, 4 * crate::cuda::emu::cublas::SPLIT_K, 6);
    let (a, ga) = both(&randn(&[m, k], DType::BF16, &mut rng), dev);
    let (b, gb) = both(&randn(&[k, n], DType::BF16, &mut rng), dev);
    let got = matmul::matmul_forward(&ga, &gb, false, false).unwrap();
    let (av, bv) = (a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
    let once: Vec<f64> = (0..m * n)
        .map(|e| {
            let (i, j) = (e / n, e % n);
            let s: f64 = (0..k).map(|l| av[i * k + l] * bv[l * n + j]).sum();
            half::bf16::from_f32(s as f32).to_f64()
        })
        .collect();
    assert_eq!(got.to_vec_f64().unwrap(), once);
}
