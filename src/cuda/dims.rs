//! Checked size conversions for kernel arguments: every `usize` size a kernel takes as `int`,
//! `long long` or `unsigned` goes through `dim`, which names the op and the value when it does
//! not fit (a wrapped size would make a kernel read or write the wrong elements, silently).
//! Call sites name the type (`dim::<i32>(c, "batch_norm: channels")`): left to inference, a
//! size passed in another size's place would quietly convert to that place's type instead of
//! failing to compile.

use crate::{Error, Result};

/// `n` as the kernel's integer type `I`, or an error naming `what` ("op: size") and `n`.
pub fn dim<I: TryFrom<usize>>(n: usize, what: &'static str) -> Result<I> {
    I::try_from(n).map_err(|_| {
        let ty = std::any::type_name::<I>();
        Error::shape(what, format!("size {n} does not fit the kernel's {ty}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_that_fit_pass_through() {
        assert_eq!(dim::<i32>(7, "t: c").unwrap(), 7);
        assert_eq!(dim::<i32>(i32::MAX as usize, "t: c").unwrap(), i32::MAX);
        assert_eq!(dim::<i64>(1 << 40, "t: n").unwrap(), 1 << 40);
        assert_eq!(dim::<u32>(u32::MAX as usize, "t: n").unwrap(), u32::MAX);
    }

    #[test]
    fn a_size_of_2_pow_31_is_an_error_naming_the_op_and_the_value() {
        let e = dim::<i32>(1 << 31, "batch_norm: channels").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("batch_norm: channels"), "{msg}");
        assert!(msg.contains("2147483648"), "{msg}");
        assert!(msg.contains("i32"), "{msg}");
        assert!(dim::<u32>(1 << 32, "t").is_err());
    }
}
