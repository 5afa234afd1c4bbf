//! Transfers and dtype casts between the host and the device, on every device kind
//! (`testing::device::device_test!`).

use crate::testing::device::{device_test, randn, DTYPES};
use crate::testing::fresh_seed;
use crate::{DType, Device, Rng, Tensor};

#[test]
fn availability_never_panics() {
    let ok = crate::cuda_available();
    let reason = crate::cuda_unavailable_reason();
    assert!(ok || !reason.is_empty());
    println!("cuda available: {ok}; {reason}");
}

fn transfers_and_casts_round_trip(dev: Device) {
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
device_test!(transfers_and_casts_round_trip);
