//! 2-D convolution, NHWC activations, KRSC weights `[cout, kh, kw, cin/groups]`, no bias
//! (every convolution in a ResNet is followed by batch norm).

pub mod algorithms;
pub mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(feature = "cuda")]
pub mod cuda_limits;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
#[cfg(test)]
mod tests;

mod tape;
pub use algorithms::{
    choice_summary, conv_algorithms, mark_choices, set_conv_algorithms, use_conv_algorithms,
    ChoiceSummary, ConvAlgorithms,
};
pub use tape::conv2d;

/// Builds and frees the cuDNN descriptors a GPU convolution of `g` in `dt` uses, and checks
/// that cuDNN's output shape is `g`'s; host-only (cuDNN loaded, no GPU needed), for checking
/// every model's convolutions against the real cuDNN on a machine without a GPU.
#[cfg(feature = "cuda")]
pub fn cudnn_describe(g: &Geometry, dt: crate::DType) -> Result<()> {
    cuda::describe(g, dt)
}

use crate::{on_backend, Error, Result, Tensor};

/// What each backend provides for the convolutions (the CPU's and the GPU's implementations take the
/// same arguments: the compiler checks them against this trait).
pub(crate) trait Conv2dKernels {
    /// y [n, ho, wo, cout] = conv(x, w).
    fn conv2d_forward(x: &Tensor, w: &Tensor, g: &Geometry) -> Result<Tensor>;
    /// dx [n, h, w, cin] from dy and w.
    fn conv2d_backward_input(dy: &Tensor, w: &Tensor, g: &Geometry) -> Result<Tensor>;
    /// dw [cout, kh, kw, cin/groups] from x and dy.
    fn conv2d_backward_weight(x: &Tensor, dy: &Tensor, g: &Geometry) -> Result<Tensor>;
}

/// Stride, padding (symmetric), dilation and groups of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dSpec {
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub dilation: (usize, usize),
    pub groups: usize,
}

impl Conv2dSpec {
    pub fn new(stride: usize, padding: usize) -> Self {
        Conv2dSpec {
            stride: (stride, stride),
            padding: (padding, padding),
            dilation: (1, 1),
            groups: 1,
        }
    }
    /// "Same"-style padding for odd kernels, as the ResNet convolutions use.
    pub fn same(kernel: usize, stride: usize) -> Self {
        Conv2dSpec::new(stride, kernel / 2)
    }
    pub fn with_groups(self, groups: usize) -> Self {
        Conv2dSpec { groups, ..self }
    }
    pub fn with_dilation(self, d: usize) -> Self {
        Conv2dSpec {
            dilation: (d, d),
            ..self
        }
    }
    pub fn output_size(&self, h: usize, w: usize, kh: usize, kw: usize) -> Option<(usize, usize)> {
        let eh = self.dilation.0 * (kh - 1) + 1;
        let ew = self.dilation.1 * (kw - 1) + 1;
        let (hp, wp) = (h + 2 * self.padding.0, w + 2 * self.padding.1);
        if hp < eh || wp < ew || self.stride.0 == 0 || self.stride.1 == 0 {
            return None;
        }
        Some(((hp - eh) / self.stride.0 + 1, (wp - ew) / self.stride.1 + 1))
    }
}

/// Every size of one convolution, checked once and shared by the forward and both backwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub ho: usize,
    pub wo: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub dh: usize,
    pub dw: usize,
    pub groups: usize,
    pub cin_g: usize,
    pub cout_g: usize,
}

impl Geometry {
    pub fn new(x_shape: &[usize], w_shape: &[usize], s: &Conv2dSpec) -> Result<Self> {
        let op = "conv2d";
        let [n, h, w, cin] = *x_shape else {
            return Err(Error::shape(
                op,
                format!("input must be NHWC (rank 4), got {x_shape:?}"),
            ));
        };
        let [cout, kh, kw, cin_g] = *w_shape else {
            return Err(Error::shape(
                op,
                format!("weight must be [cout, kh, kw, cin/groups], got {w_shape:?}"),
            ));
        };
        let groups = s.groups;
        if groups == 0 || cin % groups != 0 || cout % groups != 0 {
            return Err(Error::shape(
                op,
                format!("{groups} groups do not divide {cin} input and {cout} output channels"),
            ));
        }
        if cin_g != cin / groups {
            return Err(Error::shape(
                op,
                format!("weight {w_shape:?} expects {cin_g} channels per group, input {x_shape:?} has {} ({groups} groups)", cin / groups),
            ));
        }
        let (ho, wo) = s.output_size(h, w, kh, kw).ok_or_else(|| {
            Error::shape(
                op,
                format!("a {kh}x{kw} kernel with {s:?} does not fit an input of {h}x{w}"),
            )
        })?;
        Ok(Geometry {
            n,
            h,
            w,
            cin,
            cout,
            kh,
            kw,
            ho,
            wo,
            sh: s.stride.0,
            sw: s.stride.1,
            ph: s.padding.0,
            pw: s.padding.1,
            dh: s.dilation.0,
            dw: s.dilation.1,
            groups,
            cin_g,
            cout_g: cout / groups,
        })
    }
    /// Length of one receptive field (the GEMM's reduction).
    pub fn k(&self) -> usize {
        self.kh * self.kw * self.cin_g
    }
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && self.ph == 0 && self.pw == 0
    }
    /// Multiply-accumulates of the forward pass.
    pub fn macs(&self) -> u64 {
        (self.n * self.ho * self.wo * self.cout) as u64 * self.k() as u64
    }
}

pub fn conv2d_forward(x: &Tensor, w: &Tensor, spec: &Conv2dSpec) -> Result<Tensor> {
    let g = Geometry::new(x.shape(), w.shape(), spec)?;
    on_backend!("conv2d", [x, w], B => B::conv2d_forward(x, w, &g))
}

pub fn conv2d_backward_input(
    dy: &Tensor,
    w: &Tensor,
    x_shape: &[usize],
    spec: &Conv2dSpec,
) -> Result<Tensor> {
    let g = Geometry::new(x_shape, w.shape(), spec)?;
    check_dy(dy, &g)?;
    on_backend!("conv2d_backward_input", [dy, w], B => B::conv2d_backward_input(dy, w, &g))
}

pub fn conv2d_backward_weight(
    x: &Tensor,
    dy: &Tensor,
    w_shape: &[usize],
    spec: &Conv2dSpec,
) -> Result<Tensor> {
    let g = Geometry::new(x.shape(), w_shape, spec)?;
    check_dy(dy, &g)?;
    on_backend!("conv2d_backward_weight", [x, dy], B => B::conv2d_backward_weight(x, dy, &g))
}

fn check_dy(dy: &Tensor, g: &Geometry) -> Result<()> {
    let want = [g.n, g.ho, g.wo, g.cout];
    if dy.shape() != want {
        return Err(Error::shape(
            "conv2d_backward",
            format!(
                "output gradient has shape {:?}, expected {:?}",
                dy.shape(),
                want
            ),
        ));
    }
    Ok(())
}
