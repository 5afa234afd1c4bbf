//! f64 to the 16-bit floats, rounded to nearest even from the f64 value itself.
//!
//! The `half` crate's `bf16::from_f64` drops the low 32 bits of the f64 before it decides a tie,
//! so a value just above a tie rounds down (about 1 random value in 8,000; a tensor of 1,003
//! f32 values met one in 2 of 60 test runs). Its `f16::from_f64` rounds twice (to f32, then to
//! f16) where the CPU has F16C. Here the f64 is first rounded to f32 *to odd* (truncate, then
//! set the last bit if anything was cut off), then to the 16-bit type to nearest even: with 24
//! bits against 8 or 11, the odd bit stands for every bit cut off, so the result is the
//! correctly rounded one.

use half::{bf16, f16};

/// `v` rounded to f32 toward zero, with the last bit set when that was inexact.
fn f32_round_to_odd(v: f64) -> f32 {
    let f = v as f32;
    if f as f64 == v || v.is_nan() {
        return f;
    }
    let mut bits = f.to_bits();
    if (f as f64).abs() > v.abs() {
        bits -= 1; // one step toward zero (sign-magnitude bits)
    }
    f32::from_bits(bits | 1)
}

/// `v` rounded to the nearest bf16, ties to even (NaN stays a NaN, overflow gives infinity).
pub fn bf16_from_f64(v: f64) -> bf16 {
    bf16::from_f32(f32_round_to_odd(v))
}

/// `v` rounded to the nearest f16, ties to even.
pub fn f16_from_f64(v: f64) -> f16 {
    f16::from_f32(f32_round_to_odd(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fresh_seed;
    use crate::Rng;

    /// The correctly rounded bf16 of a finite `v` inside bf16's normal range, by exact
    /// arithmetic: the two neighbours `lo ≤ |v| < hi` share a binade with `|v|`, so `|v| − lo`
    /// and `hi − |v|` are exact in f64 (Sterbenz).
    fn nearest_bf16(v: f64) -> f64 {
        let a = v.abs();
        let ulp = 2f64.powi(a.log2().floor() as i32 - 7);
        let lo = (a / ulp).floor() * ulp;
        let hi = lo + ulp;
        let (dl, dh) = (a - lo, hi - a);
        let even_lo = ((lo / ulp) as u64) % 2 == 0;
        let r = if dl < dh || (dl == dh && even_lo) {
            lo
        } else {
            hi
        };
        r.copysign(v)
    }

    #[test]
    fn a_value_just_above_a_tie_rounds_up() {
        // f32 0x3f988001: bf16's rounding bit set, then zeros down to the f32's last bit.
        let v = f32::from_bits(0x3f98_8001) as f64;
        assert_eq!(bf16_from_f64(v).to_bits(), 0x3f99);
        assert_eq!(bf16::from_f32(v as f32).to_bits(), 0x3f99);
        // A tie proper goes to even, both ways.
        assert_eq!(
            bf16_from_f64(f32::from_bits(0x3f98_8000) as f64).to_bits(),
            0x3f98
        );
        assert_eq!(
            bf16_from_f64(f32::from_bits(0x3f99_8000) as f64).to_bits(),
            0x3f9a
        );
        // An f64 just above a tie in bits the f32 cannot hold.
        let tie = f32::from_bits(0x3f98_8000) as f64;
        assert_eq!(bf16_from_f64(tie + tie * f64::EPSILON).to_bits(), 0x3f99);
        assert_eq!(bf16_from_f64(-(tie + tie * f64::EPSILON)).to_bits(), 0xbf99);
        assert_eq!(bf16_from_f64(tie - tie * f64::EPSILON).to_bits(), 0x3f98);
    }

    #[test]
    fn special_values_and_the_ends_of_the_range() {
        assert!(bf16_from_f64(f64::NAN).is_nan());
        assert_eq!(bf16_from_f64(f64::INFINITY), bf16::INFINITY);
        assert_eq!(bf16_from_f64(f64::NEG_INFINITY), bf16::NEG_INFINITY);
        assert_eq!(bf16_from_f64(1e300), bf16::INFINITY);
        assert_eq!(bf16_from_f64(-1e300), bf16::NEG_INFINITY);
        assert_eq!(bf16_from_f64(f64::MAX).to_bits(), 0x7f80);
        assert_eq!(bf16_from_f64(bf16::MAX.to_f64()), bf16::MAX);
        assert_eq!(bf16_from_f64(-0.0).to_bits(), 0x8000);
        assert_eq!(bf16_from_f64(1e-300).to_bits(), 0x0000);
        assert_eq!(bf16_from_f64(-1e-300).to_bits(), 0x8000);
        // Subnormal bf16s (f32's exponent range) round like the rest.
        let s = bf16::from_bits(0x0003).to_f64();
        assert_eq!(bf16_from_f64(s).to_bits(), 0x0003);
        assert_eq!(bf16_from_f64(s * 1.2).to_bits(), 0x0004);
        assert!(f16_from_f64(f64::NAN).is_nan());
        assert_eq!(f16_from_f64(1e10), f16::INFINITY);
        assert_eq!(
            f16_from_f64(1.0 + 2f64.powi(-11) * 1.000001).to_bits(),
            0x3c01
        );
        assert_eq!(f16_from_f64(1.0 + 2f64.powi(-11)).to_bits(), 0x3c00);
    }

    /// Random f64 values, and values placed exactly at, just above and just below ties, against
    /// exact rounding.
    #[test]
    fn matches_exact_rounding_on_random_values_and_near_ties() {
        let mut rng = Rng::new(fresh_seed("bf16_from_f64"));
        for _ in 0..200_000 {
            let v = rng.normal() * 2f64.powi((rng.uniform() * 60.0) as i32 - 30);
            if v == 0.0 {
                continue;
            }
            assert_eq!(bf16_from_f64(v).to_f64(), nearest_bf16(v), "{v:e}");
            // The tie between v's two bf16 neighbours, and the f64s on either side of it.
            let a = v.abs();
            let ulp = 2f64.powi(a.log2().floor() as i32 - 7);
            let tie = ((a / ulp).floor() + 0.5) * ulp;
            for t in [tie, tie.next_up(), tie.next_down()] {
                let t = t.copysign(v);
                assert_eq!(bf16_from_f64(t).to_f64(), nearest_bf16(t), "{t:e}");
            }
        }
    }
}
