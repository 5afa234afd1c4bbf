//! The two halves of selective-kernel attention, each one pass over the paths:
//! - `sk_pool`: paths u = [u0 | u1] of shape [N, H, W, 2C] → mean over H, W of (u0 + u1), [N, C];
//! - `sk_mix`: with mixing logits z = [z0 | z1] of shape [N, 2C], the per-channel softmax
//!   across the two paths a = softmax(z0, z1), and y = a0·u0 + a1·u1, [N, H, W, C].
//!
//! Both read u, so each has a gradient for it. Recorded separately (`sk_pool`, `sk_mix`) the tape
//! adds the two; recorded as a linked pair (`sk_pool_linked`, `sk_mix_linked`, as SkConv does)
//! the mix's backward hands dy to the pool's, which writes all of du in one pass.

pub mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
#[cfg(test)]
mod tests;

mod tape;
pub use tape::{sk_mix, sk_mix_linked, sk_pool, sk_pool_linked};

use crate::{on_backend, Error, Result, Tensor};
use std::cell::RefCell;
use std::rc::Rc;

/// What each backend provides for selective-kernel attention (the CPU's and the GPU's implementations take the
/// same arguments: the compiler checks them against this trait).
pub(crate) trait SkKernels {
    fn sk_pool_forward(u: &Tensor) -> Result<Tensor>;
    fn sk_pool_backward(ds: &Tensor, u_shape: &[usize]) -> Result<Tensor>;
    fn sk_mix_forward(u: &Tensor, z: &Tensor) -> Result<Tensor>;
    /// Returns (du, dz).
    fn sk_mix_backward(u: &Tensor, z: &Tensor, dy: &Tensor) -> Result<(Tensor, Tensor)>;
    /// The gradient of the mixing logits: dz = Σ_hw dy·(u0 − u1) · a0·(1 − a0), with the sign
    /// flipped for z1.
    fn sk_mix_backward_dz(u: &Tensor, z: &Tensor, dy: &Tensor) -> Result<Tensor>;
    /// All of du, the mix's term (when given) after its logit gradient read dy and z.
    fn sk_backward_du(
        mix: Option<(&Tensor, &Tensor)>,
        ds: Option<&Tensor>,
        u_shape: &[usize],
    ) -> Result<Tensor>;
}

fn paths(op: &'static str, u: &Tensor) -> Result<(usize, usize, usize, usize)> {
    let (n, h, w, c2) = u.dims4(op)?;
    if c2 % 2 != 0 {
        return Err(Error::shape(
            op,
            format!("paths need an even channel count, got {:?}", u.shape()),
        ));
    }
    Ok((n, h, w, c2 / 2))
}

pub fn sk_pool_forward(u: &Tensor) -> Result<Tensor> {
    paths("sk_pool", u)?;
    on_backend!("sk_pool", [u], B => B::sk_pool_forward(u))
}

pub fn sk_pool_backward(dy: &Tensor, u_shape: &[usize]) -> Result<Tensor> {
    on_backend!("sk_pool_backward", [dy], B => B::sk_pool_backward(dy, u_shape))
}

pub fn sk_mix_forward(u: &Tensor, z: &Tensor) -> Result<Tensor> {
    let (n, _, _, c) = paths("sk_mix", u)?;
    if z.shape() != [n, 2 * c] {
        return Err(Error::shape(
            "sk_mix",
            format!(
                "logits {:?} for paths {:?}: expected [{n}, {}]",
                z.shape(),
                u.shape(),
                2 * c
            ),
        ));
    }
    on_backend!("sk_mix", [u, z], B => B::sk_mix_forward(u, z))
}

/// Returns (du, dz).
pub fn sk_mix_backward(u: &Tensor, z: &Tensor, dy: &Tensor) -> Result<(Tensor, Tensor)> {
    on_backend!("sk_mix_backward", [u, z, dy], B => B::sk_mix_backward(u, z, dy))
}

/// The gradient of the mixing logits alone (the second output of [`sk_mix_backward`]).
pub fn sk_mix_backward_dz(u: &Tensor, z: &Tensor, dy: &Tensor) -> Result<Tensor> {
    on_backend!("sk_mix_backward_dz", [u, z, dy], B => B::sk_mix_backward_dz(u, z, dy))
}

/// All of the gradient of the paths (shape `u_shape`): the mix's term from `mix` = (dy, z) plus
/// the pool's from `ds`; at least one must be given.
pub fn sk_backward_du(
    mix: Option<(&Tensor, &Tensor)>,
    ds: Option<&Tensor>,
    u_shape: &[usize],
) -> Result<Tensor> {
    let op = "sk_backward_du";
    let mut ts: Vec<&Tensor> = ds.into_iter().collect();
    if let Some((dy, z)) = mix {
        ts.extend([dy, z]);
    }
    if ts.is_empty() {
        return Err(Error::shape(op, "neither dy nor ds was given"));
    }
    on_backend!(op, slice &ts, B => B::sk_backward_du(mix, ds, u_shape))
}

/// What links the pool and the mix of one attention: the mix's backward leaves (dy, z) here
/// for the pool's backward, which then writes all of du at once.
#[derive(Clone, Default)]
pub struct SkLink {
    /// Whether the pool was recorded (its backward will run when the mix's gradient reaches
    /// the logits), so the mix may leave its term of du to it.
    pooled: Rc<RefCell<bool>>,
    pending: Rc<RefCell<Option<(Tensor, Tensor)>>>,
}
