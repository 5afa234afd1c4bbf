//! The stem's 3-channel convolution on a GPU runs as an 8-channel one: the input gets five
//! zero channels and the weight five zero input channels, so cuDNN can pick its tensor-core
//! kernels (they want channel counts that are multiples of 8 in bf16). The zeros add exact
//! zeros to every sum, so the output is the 3-channel convolution's; the weight's gradient is
//! the first 3 channels of the padded one (the concat's backward), and the parameter, its
//! optimizer state and checkpoints keep the 3-channel shape. The CPU path is untouched.

use crate::autograd::{Tape, Var};
use crate::ops::{self, channels::concat_channels, Conv2dSpec};
use crate::{Result, Tensor};

/// Channel counts at or below this are padded up to it.
pub const PADDED_CHANNELS: usize = 8;

/// Whether a convolution over `cin` channels of `x` runs padded: the RGB stem on a GPU.
pub fn applies(x: &Tensor, cin: usize) -> bool {
    matches!(x.device(), crate::Device::Cuda(_)) && cin == 3
}

/// `v` with zero channels appended up to [`PADDED_CHANNELS`] (filled on the device).
fn pad(tape: &mut Tape, v: &Var) -> Result<Var> {
    let t = v.value();
    let mut shape = t.shape().to_vec();
    let last = shape.len() - 1;
    shape[last] = PADDED_CHANNELS - shape[last];
    let zeros = tape.constant(Tensor::zeros(&shape, t.dtype(), t.device())?);
    concat_channels(tape, &[v, &zeros])
}

/// conv2d(x, w) computed as the 8-channel convolution of the padded input and weight.
pub fn conv2d_padded(tape: &mut Tape, x: &Var, w: &Var, spec: Conv2dSpec) -> Result<Var> {
    let x8 = pad(tape, x)?;
    let w8 = pad(tape, w)?;
    ops::conv2d(tape, &x8, &w8, spec)
}
