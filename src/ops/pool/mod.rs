//! Pooling over NHWC: max pool (the 3x3/2 stem pool), the 2x2 average pool of the ResNet-D
//! shortcut, and global average pooling to [N, C].

pub mod cpu;
#[cfg(test)]
mod tests;

use crate::autograd::{Tape, Var};
use crate::{dispatch, float_dispatch, Error, Result, Tensor};

/// Square window, stride and symmetric padding (padding counts as −∞ for max pooling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSpec {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl PoolSpec {
    pub fn output_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let (hp, wp) = (h + 2 * self.padding, w + 2 * self.padding);
        if hp < self.kernel
            || wp < self.kernel
            || self.stride == 0
            || 2 * self.padding > self.kernel
        {
            return None;
        }
        Some((
            (hp - self.kernel) / self.stride + 1,
            (wp - self.kernel) / self.stride + 1,
        ))
    }
}

pub fn max_pool2d_forward(x: &Tensor, s: &PoolSpec) -> Result<Tensor> {
    let (_, h, w, _) = x.dims4("max_pool2d")?;
    let (ho, wo) = s.output_size(h, w).ok_or_else(|| {
        Error::shape(
            "max_pool2d",
            format!("{s:?} does not fit an input of {h}x{w}"),
        )
    })?;
    dispatch!("max_pool2d", [x], cpu: |dt| float_dispatch!("max_pool2d", dt, cpu::max_forward(x, s, ho, wo)),
        cuda: crate::cuda::ops::max_pool2d_forward(x, s, ho, wo))
}

/// dx from the forward's input x and output y (the GPU reads y to tell each window's choice;
/// the CPU re-derives it).
pub fn max_pool2d_backward(x: &Tensor, y: &Tensor, dy: &Tensor, s: &PoolSpec) -> Result<Tensor> {
    if y.shape() != dy.shape() {
        return Err(Error::shape(
            "max_pool2d_backward",
            format!(
                "output {:?} and its gradient {:?} differ",
                y.shape(),
                dy.shape()
            ),
        ));
    }
    dispatch!("max_pool2d_backward", [x, y, dy], cpu: |dt| float_dispatch!("max_pool2d_backward", dt, cpu::max_backward(x, dy, s)),
        cuda: crate::cuda::ops::max_pool2d_backward(x, y, dy, s))
}

pub fn max_pool2d(tape: &mut Tape, x: &Var, s: PoolSpec) -> Result<Var> {
    let y = max_pool2d_forward(x.value(), &s)?;
    let (xv, yv) = (x.value().clone(), y.clone());
    Ok(tape.record("max_pool2d", &[x], y, move |dy, _| {
        Ok(vec![Some(max_pool2d_backward(&xv, &yv, dy, &s)?)])
    }))
}

/// Output size of the ResNet-D shortcut pool: ceil(h / stride).
pub fn avg_pool2x2_output(h: usize, w: usize, stride: usize) -> (usize, usize) {
    (h.div_ceil(stride), w.div_ceil(stride))
}

pub fn avg_pool2x2_forward(x: &Tensor, stride: usize) -> Result<Tensor> {
    let (_, h, w, _) = x.dims4("avg_pool2x2")?;
    if stride == 0 || stride > 2 {
        return Err(Error::shape(
            "avg_pool2x2",
            format!("stride must be 1 or 2, got {stride}"),
        ));
    }
    let (ho, wo) = avg_pool2x2_output(h, w, stride);
    dispatch!("avg_pool2x2", [x], cpu: |dt| float_dispatch!("avg_pool2x2", dt, cpu::avg2x2_forward(x, stride, ho, wo)),
        cuda: crate::cuda::ops::avg_pool2x2_forward(x, stride, ho, wo))
}

pub fn avg_pool2x2_backward(dy: &Tensor, stride: usize, x_shape: &[usize]) -> Result<Tensor> {
    dispatch!("avg_pool2x2_backward", [dy], cpu: |dt| float_dispatch!("avg_pool2x2_backward", dt, cpu::avg2x2_backward(dy, stride, x_shape)),
        cuda: crate::cuda::ops::avg_pool2x2_backward(dy, stride, x_shape))
}

/// The ResNet-D shortcut pool: 2x2 windows at stride 1 or 2, padded at the end ("SAME"), the
/// average taken over the elements inside the image. At stride 2 on even sizes this is the
/// plain 2x2/2 average pool; at stride 1 it is TF's 2x2 "SAME" pool of the official code.
pub fn avg_pool2x2(tape: &mut Tape, x: &Var, stride: usize) -> Result<Var> {
    let y = avg_pool2x2_forward(x.value(), stride)?;
    let shape = x.shape().to_vec();
    Ok(tape.record("avg_pool2x2", &[x], y, move |dy, _| {
        Ok(vec![Some(avg_pool2x2_backward(dy, stride, &shape)?)])
    }))
}

pub fn global_avg_pool_forward(x: &Tensor) -> Result<Tensor> {
    x.dims4("global_avg_pool")?;
    dispatch!("global_avg_pool", [x], cpu: |dt| float_dispatch!("global_avg_pool", dt, cpu::global_avg_forward(x)),
        cuda: crate::cuda::ops::global_avg_pool_forward(x))
}

pub fn global_avg_pool_backward(dy: &Tensor, x_shape: &[usize]) -> Result<Tensor> {
    dispatch!("global_avg_pool_backward", [dy], cpu: |dt| float_dispatch!("global_avg_pool_backward", dt, cpu::global_avg_backward(dy, x_shape)),
        cuda: crate::cuda::ops::global_avg_pool_backward(dy, x_shape))
}

/// [N, H, W, C] → [N, C].
pub fn global_avg_pool(tape: &mut Tape, x: &Var) -> Result<Var> {
    let y = global_avg_pool_forward(x.value())?;
    let shape = x.shape().to_vec();
    Ok(tape.record("global_avg_pool", &[x], y, move |dy, _| {
        Ok(vec![Some(global_avg_pool_backward(dy, &shape)?)])
    }))
}
