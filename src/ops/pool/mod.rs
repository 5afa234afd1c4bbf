//! Pooling over NHWC: max pool (the 3x3/2 stem pool), average pool (the 2x2 of the ResNet-D
//! shortcut), and global average pooling to [N, C].
//!
//! Padding is given per side ([`PoolSpec::pad_h`], [`PoolSpec::pad_w`]: cells before and after
//! the image along that axis). Kernels take only the leading offsets; the output size comes
//! from the padded totals. TensorFlow's "SAME" ([`PoolSpec::same_tf`]) puts the odd cell of an
//! uneven total at the end, which is what the official SimCLRv2 models were trained with.

pub mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
#[cfg(test)]
mod tests;

mod tape;
pub use tape::{avg_pool2d, global_avg_pool, max_pool2d};

use crate::{on_backend, Error, Result, Tensor};

/// What each backend provides for pooling (the CPU's and the GPU's implementations take the
/// same arguments: the compiler checks them against this trait).
pub(crate) trait PoolKernels {
    fn max_pool2d_forward(x: &Tensor, s: &PoolSpec, ho: usize, wo: usize) -> Result<Tensor>;
    /// dx from the forward's input x and output y (which tells each window's choice).
    fn max_pool2d_backward(x: &Tensor, y: &Tensor, dy: &Tensor, s: &PoolSpec) -> Result<Tensor>;
    fn avg_pool2d_forward(x: &Tensor, s: &AvgPoolSpec, ho: usize, wo: usize) -> Result<Tensor>;
    fn avg_pool2d_backward(dy: &Tensor, s: &AvgPoolSpec, x_shape: &[usize]) -> Result<Tensor>;
    fn global_avg_pool_forward(x: &Tensor) -> Result<Tensor>;
    fn global_avg_pool_backward(dy: &Tensor, x_shape: &[usize]) -> Result<Tensor>;
}

/// Square window, stride and padding per side (padding counts as −∞ for max pooling; for the
/// average pool, see [`avg_pool2d`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSpec {
    pub kernel: usize,
    pub stride: usize,
    /// (before, after) along H: cells above the first row and below the last.
    pub pad_h: (usize, usize),
    /// (before, after) along W.
    pub pad_w: (usize, usize),
}

/// TF "SAME" padding along one axis: output ceil(len / stride), the total split with the
/// extra cell (when odd) at the end.
fn same_tf_axis(len: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = len.div_ceil(stride.max(1));
    let total = ((out.max(1) - 1) * stride + kernel).saturating_sub(len);
    (total / 2, total - total / 2)
}

impl PoolSpec {
    /// The same padding on every side (PyTorch's `padding=p`).
    pub const fn symmetric(kernel: usize, stride: usize, padding: usize) -> Self {
        PoolSpec {
            kernel,
            stride,
            pad_h: (padding, padding),
            pad_w: (padding, padding),
        }
    }

    /// TensorFlow's `padding="SAME"` for an `h`x`w` input.
    pub fn same_tf(h: usize, w: usize, kernel: usize, stride: usize) -> Self {
        PoolSpec {
            kernel,
            stride,
            pad_h: same_tf_axis(h, kernel, stride),
            pad_w: same_tf_axis(w, kernel, stride),
        }
    }

    /// None when a window could hold no image cell (a side padded by a whole kernel or more),
    /// the stride is zero, or the padded input is smaller than the window.
    pub fn output_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let k = self.kernel;
        let pads = [self.pad_h.0, self.pad_h.1, self.pad_w.0, self.pad_w.1];
        let (hp, wp) = (
            h + self.pad_h.0 + self.pad_h.1,
            w + self.pad_w.0 + self.pad_w.1,
        );
        if hp < k || wp < k || self.stride == 0 || k == 0 || pads.iter().any(|&p| p >= k) {
            return None;
        }
        Some(((hp - k) / self.stride + 1, (wp - k) / self.stride + 1))
    }

    fn checked_output(&self, op: &'static str, h: usize, w: usize) -> Result<(usize, usize)> {
        self.output_size(h, w)
            .ok_or_else(|| Error::shape(op, format!("{self:?} does not fit an input of {h}x{w}")))
    }
}

pub fn max_pool2d_forward(x: &Tensor, s: &PoolSpec) -> Result<Tensor> {
    let (_, h, w, _) = x.dims4("max_pool2d")?;
    let (ho, wo) = s.checked_output("max_pool2d", h, w)?;
    on_backend!("max_pool2d", [x], B => B::max_pool2d_forward(x, s, ho, wo))
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
    on_backend!("max_pool2d_backward", [x, y, dy], B => B::max_pool2d_backward(x, y, dy, s))
}

/// An average pool: its window, and whether padded cells count in the divisor (TF's explicit
/// zero padding then a "VALID" pool; PyTorch's `count_include_pad=True`) or not (TF "SAME").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPoolSpec {
    pub window: PoolSpec,
    pub count_padding: bool,
}

impl AvgPoolSpec {
    /// The ResNet-D shortcut pool of the official SimCLRv2 code: 2x2 at the block's stride.
    /// At stride 1 TF "SAME" (one cell padded at the end, not counted); at stride 2 one zero
    /// row and column appended then a "VALID" pool, so the zeros count (a window at the edge
    /// of an odd-sized input divides by 4). Output ceil(size / stride) either way.
    pub fn resnet_d_shortcut(h: usize, w: usize, stride: usize) -> Self {
        AvgPoolSpec {
            window: PoolSpec::same_tf(h, w, 2, stride),
            count_padding: stride > 1,
        }
    }
}

pub fn avg_pool2d_forward(x: &Tensor, s: &AvgPoolSpec) -> Result<Tensor> {
    let (_, h, w, _) = x.dims4("avg_pool2d")?;
    let (ho, wo) = s.window.checked_output("avg_pool2d", h, w)?;
    on_backend!("avg_pool2d", [x], B => B::avg_pool2d_forward(x, s, ho, wo))
}

pub fn avg_pool2d_backward(dy: &Tensor, s: &AvgPoolSpec, x_shape: &[usize]) -> Result<Tensor> {
    let op = "avg_pool2d_backward";
    let (n, ho, wo, c) = dy.dims4(op)?;
    let [xn, h, w, xc] = x_shape[..] else {
        return Err(Error::shape(
            op,
            format!("input shape {x_shape:?} is not NHWC"),
        ));
    };
    if (xn, xc) != (n, c) || s.window.output_size(h, w) != Some((ho, wo)) {
        return Err(Error::shape(
            op,
            format!(
                "gradient {:?} is not {s:?}'s output for {x_shape:?}",
                dy.shape()
            ),
        ));
    }
    on_backend!(op, [dy], B => B::avg_pool2d_backward(dy, s, x_shape))
}

pub fn global_avg_pool_forward(x: &Tensor) -> Result<Tensor> {
    x.dims4("global_avg_pool")?;
    on_backend!("global_avg_pool", [x], B => B::global_avg_pool_forward(x))
}

pub fn global_avg_pool_backward(dy: &Tensor, x_shape: &[usize]) -> Result<Tensor> {
    on_backend!("global_avg_pool_backward", [dy], B => B::global_avg_pool_backward(dy, x_shape))
}
