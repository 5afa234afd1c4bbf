//! cuDNN describes tensors with 32-bit element counts and strides: a tensor of 2^31 elements
//! or more is refused or, worse, indexed with wrapped strides. Every dimension may fit `int`
//! while the product does not (the r152_3x micro-batch's early activations), so the check is
//! on the product of each tensor a convolution hands to cuDNN.

use super::Geometry;

/// The largest element count cuDNN indexes (i32::MAX).
pub const MAX_ELEMENTS: usize = i32::MAX as usize;

/// Why `g` cannot go to cuDNN (which tensor, its NHWC shape and element count), if it cannot.
pub fn too_large(g: &Geometry) -> Option<String> {
    let tensors = [
        ("input", [g.n, g.h, g.w, g.cin]),
        ("output", [g.n, g.ho, g.wo, g.cout]),
        ("weight", [g.cout, g.kh, g.kw, g.cin_g]),
    ];
    tensors.into_iter().find_map(|(what, shape)| {
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        match n {
            Some(n) if n <= MAX_ELEMENTS => None,
            _ => Some(format!(
                "the {what} tensor {shape:?} (NHWC) holds {} elements, more than cuDNN's \
                 2^31 - 1; use a smaller batch or --micro-batch",
                n.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string())
            )),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Conv2dSpec;

    #[test]
    fn the_product_is_checked_not_each_dimension() {
        let spec = Conv2dSpec::new(1, 1);
        // 512 x 112 x 112 x 384 = 2,466,250,752 elements: every dimension small.
        let big = Geometry::new(&[512, 112, 112, 384], &[8, 3, 3, 384], &spec).unwrap();
        let why = too_large(&big).expect("over the limit");
        assert!(why.contains("input tensor [512, 112, 112, 384]"), "{why}");
        assert!(why.contains("2466250752"), "{why}");
        let ok = Geometry::new(&[256, 112, 112, 64], &[64, 3, 3, 64], &spec).unwrap();
        assert_eq!(too_large(&ok), None);
    }
}
