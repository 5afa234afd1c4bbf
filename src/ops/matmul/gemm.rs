//! A bounds-checked view over the GEMM crate: every call checks that the strided matrices fit
//! in their slices, so a shape bug fails loudly instead of reading past a buffer.

use crate::Float;

/// A strided matrix inside a slice: element (i, j) is at `offset + i·rs + j·cs`.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
    pub offset: usize,
}

impl Layout {
    pub fn row_major(rows: usize, cols: usize) -> Self {
        Layout {
            rows,
            cols,
            rs: cols,
            cs: 1,
            offset: 0,
        }
    }
    pub fn t(self) -> Self {
        Layout {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
    pub fn at(self, offset: usize) -> Self {
        Layout { offset, ..self }
    }
    pub fn with_rs(self, rs: usize) -> Self {
        Layout { rs, ..self }
    }
    fn last(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            return self.offset;
        }
        self.offset + (self.rows - 1) * self.rs + (self.cols - 1) * self.cs
    }
}

/// C = alpha·A·B + beta·C. The argument list mirrors BLAS's GEMM on purpose.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Float>(
    alpha: T,
    a: &[T],
    la: Layout,
    b: &[T],
    lb: Layout,
    beta: T,
    c: &mut [T],
    lc: Layout,
) {
    assert!(
        la.rows == lc.rows && lb.cols == lc.cols && la.cols == lb.rows,
        "gemm: {}x{} · {}x{} into {}x{}",
        la.rows,
        la.cols,
        lb.rows,
        lb.cols,
        lc.rows,
        lc.cols
    );
    if lc.rows == 0 || lc.cols == 0 {
        return;
    }
    assert!(la.last() < a.len() || la.cols == 0, "gemm: A out of bounds");
    assert!(lb.last() < b.len() || lb.rows == 0, "gemm: B out of bounds");
    assert!(lc.last() < c.len(), "gemm: C out of bounds");
    // SAFETY: the asserts above check that every addressed element lies inside its slice, and
    // `c` is a unique borrow so it cannot alias `a` or `b`.
    unsafe {
        T::gemm_raw(
            la.rows,
            la.cols,
            lb.cols,
            alpha,
            a.as_ptr().add(la.offset),
            la.rs as isize,
            la.cs as isize,
            b.as_ptr().add(lb.offset),
            lb.rs as isize,
            lb.cs as isize,
            beta,
            c.as_mut_ptr().add(lc.offset),
            lc.rs as isize,
            lc.cs as isize,
        )
    }
}
