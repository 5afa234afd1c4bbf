//! Ops: each folder holds one op family's forward, backward, CPU kernel and tests side by side.
//!
//! Each op comes in two forms:
//! - raw functions on [`Tensor`]s (`relu_forward`, `relu_backward`, ...) that check shapes and
//!   call the op's backend trait (`<op>/mod.rs`: `ElementwiseKernels`, ...) for the operands'
//!   device through [`on_backend!`](crate::on_backend): both backends implement the same
//!   trait, so their argument lists cannot drift apart;
//! - a tape-recording function on [`Var`](crate::autograd::Var)s (`relu`) that runs the forward
//!   and records a closure calling the raw backward functions. These live in `<op>/tape.rs`, a
//!   floor above the raw functions (ARCHITECTURE.md); `<op>/mod.rs` re-exports them.
//!
//! Naming rule, from Rust to kernel: the raw function `relu_forward` is the trait method
//! `ElementwiseKernels::relu_forward`; on the CPU it runs
//! `ops::elementwise::cpu::relu_forward::<T>`, and on the GPU the kernel symbol
//! `relu_forward_<dtype>` (`relu_forward_f32`, `relu_forward_bf16`) in `kernels/elementwise.cu`.

pub mod backend;
pub mod batch_norm;
pub mod bn_act;
pub mod channels;
pub mod conv2d;
pub mod distill;
pub mod elementwise;
pub mod gather_views;
pub mod loss;
pub mod matmul;
pub mod moments;
pub mod normalize;
pub mod ntxent;
pub mod pool;
pub mod sk;
pub mod softmax;

pub use batch_norm::{batch_norm, BnMode};
pub use channels::{concat_channels, narrow_channels};
pub use conv2d::{conv2d, Conv2dSpec};
pub use distill::{distill, DistillSpec};
pub use elementwise::{add, exp, ln, mean, mul, relu, reshape, scale, sub, sum};
pub use loss::cross_entropy;
pub use matmul::{linear, matmul};
pub use normalize::l2_normalize;
pub use ntxent::{ntxent, ntxent_accuracy};
pub use pool::{avg_pool2d, global_avg_pool, max_pool2d, AvgPoolSpec, PoolSpec};
pub use sk::{sk_mix, sk_mix_linked, sk_pool, sk_pool_linked, SkLink};
pub use softmax::{log_softmax, softmax};
