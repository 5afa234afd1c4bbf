//! NVTX ranges through the C shim `kernels/nvtx_shim.c` (built by build.rs with the `cuda`
//! feature). NVTX v3 is header-only: the shim finds a profiler's injection library through
//! `NVTX_INJECTION64_PATH` at run time, so nothing extra is linked or needed when none runs.
//! Without the feature these are empty and compile to nothing.

#[cfg(feature = "cuda")]
mod ffi {
    extern "C" {
        pub fn simclr_nvtx_push(a: *const u8, a_len: usize, b: *const u8, b_len: usize);
        pub fn simclr_nvtx_pop();
    }
}

/// Pushes a range named `a` followed by `b` (two parts so that "conv2d" + " backward" needs no
/// allocation; the shim joins them, truncated to 255 bytes).
#[inline]
pub fn push(a: &str, b: &str) {
    #[cfg(feature = "cuda")]
    // SAFETY: the shim reads exactly a_len and b_len bytes of the two live strings.
    unsafe {
        ffi::simclr_nvtx_push(a.as_ptr(), a.len(), b.as_ptr(), b.len())
    }
    #[cfg(not(feature = "cuda"))]
    let _ = (a, b);
}

/// Pops this thread's innermost range.
#[inline]
pub fn pop() {
    #[cfg(feature = "cuda")]
    // SAFETY: no arguments; popping an empty stack is an error NVTX reports, not undefined.
    unsafe {
        ffi::simclr_nvtx_pop()
    }
}
