//! Our kernels behind the CUDA arm of each op's dispatcher, one file per op family (matching
//! `src/ops/<family>/` and `kernels/<family>.cu`).

pub(crate) mod augment;
mod channels;
mod elementwise;
mod loss;
mod matmul;
mod normalize;
mod pool;
mod sk;
mod softmax;

pub use augment::augment_views;
pub use channels::{concat_channels, narrow_channels};
pub use elementwise::{add, exp, ln, mul, recip, relu_backward, relu_forward, scale, sub, sum_all};
pub use loss::cross_entropy;
pub use matmul::{add_bias, sum_rows};
pub use normalize::{l2_normalize_backward, l2_normalize_forward};
pub use pool::{
    avg_pool2d_backward, avg_pool2d_forward, global_avg_pool_backward, global_avg_pool_forward,
    max_pool2d_backward, max_pool2d_forward,
};
pub use sk::{
    sk_backward_du, sk_mix_backward, sk_mix_backward_dz, sk_mix_forward, sk_pool_backward,
    sk_pool_forward,
};
pub use softmax::{log_softmax_backward, log_softmax_forward, softmax_backward, softmax_forward};

/// Threads per block of the row kernels (softmax, loss, normalisation): whole warps, 32 to 256
/// (so the cast below is exact; the launch checks block sizes anyway).
pub(crate) fn row_threads(c: usize) -> u32 {
    if c >= 1024 {
        256
    } else {
        (c.div_ceil(32) * 32).clamp(32, 256) as u32
    }
}
