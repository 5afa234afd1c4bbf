//! Device vs CPU parity of channel concatenation and narrowing, widths and offsets on and off
//! multiples of 8, f32 and bf16.

use crate::ops::channels;
use crate::testing::device::{both, check, device_test, randn, DTYPES};
use crate::testing::fresh_seed;
use crate::{Device, Rng};

fn channels_parity(dev: Device) {
    let mut rng = Rng::new(fresh_seed("channels"));
    for dt in DTYPES {
        // Widths and offsets off multiples of 8 (one column per thread), widths on them but
        // a start off them (one column per thread: 8 would be unaligned), then all on them.
        for (ca, cb, start, len) in [(7, 12, 4, 9), (16, 8, 4, 16), (16, 8, 8, 16)] {
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
    }
}
device_test!(channels_parity);
