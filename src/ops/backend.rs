//! The two backends as types. Each op states what a backend provides as a trait in its
//! `mod.rs` (`BnActKernels`, ...), implemented by [`Cpu`] in the op's `cpu.rs` and by [`Cuda`]
//! in its `cuda.rs`: one list of arguments, which the compiler holds both backends to.
//! [`on_backend!`](crate::on_backend) picks the implementation for the operands' device.

/// The CPU reference backend.
pub struct Cpu;

/// The CUDA backend (feature `cuda`; the GPU or the emulated device).
#[cfg(feature = "cuda")]
pub struct Cuda;

/// Checks that the operands share a device and dtype, opens the profiler range named after
/// the op, and evaluates `$call` with `$B` naming the backend type of that device:
/// `on_backend!(OP, [x, dy], B => <B as BnActKernels>::grad_sums(...))`. Without the `cuda`
/// feature a device tensor is refused with the reason.
#[macro_export]
macro_rules! on_backend {
    ($op:expr, [$($t:expr),+ $(,)?], $B:ident => $call:expr $(,)?) => {
        $crate::on_backend!($op, slice &[$($t),+], $B => $call)
    };
    ($op:expr, slice $ts:expr, $B:ident => $call:expr $(,)?) => {{
        let _range = $crate::profile::op($op);
        let (device, _) = $crate::tensor::same_device_dtype($op, $ts)?;
        match device {
            $crate::Device::Cpu => {
                type $B = $crate::ops::backend::Cpu;
                $call
            }
            #[cfg(feature = "cuda")]
            $crate::Device::Cuda(_) => {
                type $B = $crate::ops::backend::Cuda;
                $call
            }
            #[cfg(not(feature = "cuda"))]
            $crate::Device::Cuda(_) => {
                Err($crate::Error::device($op, $crate::cuda_unavailable_reason()))
            }
        }
    }};
}
