//! The two halves of selective-kernel attention, each one pass over the paths:
//! - `sk_pool`: paths u = [u0 | u1] of shape [N, H, W, 2C] → mean over H, W of (u0 + u1), [N, C];
//! - `sk_mix`: with mixing logits z = [z0 | z1] of shape [N, 2C], the per-channel softmax
//!   across the two paths a = softmax(z0, z1), and y = a0·u0 + a1·u1, [N, H, W, C].

pub mod cpu;
#[cfg(test)]
mod tests;

use crate::autograd::{Tape, Var};
use crate::{dispatch, float_dispatch, Error, Result, Tensor};

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
    dispatch!("sk_pool", [u], cpu: |dt| float_dispatch!("sk_pool", dt, cpu::pool_forward(u)),
        cuda: crate::cuda::ops::sk_pool_forward(u))
}

pub fn sk_pool_backward(dy: &Tensor, u_shape: &[usize]) -> Result<Tensor> {
    dispatch!("sk_pool_backward", [dy], cpu: |dt| float_dispatch!("sk_pool_backward", dt, cpu::pool_backward(dy, u_shape)),
        cuda: crate::cuda::ops::sk_pool_backward(dy, u_shape))
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
    dispatch!("sk_mix", [u, z], cpu: |dt| float_dispatch!("sk_mix", dt, cpu::mix_forward(u, z)),
        cuda: crate::cuda::ops::sk_mix_forward(u, z))
}

/// Returns (du, dz).
pub fn sk_mix_backward(u: &Tensor, z: &Tensor, dy: &Tensor) -> Result<(Tensor, Tensor)> {
    dispatch!("sk_mix_backward", [u, z, dy], cpu: |dt| float_dispatch!("sk_mix_backward", dt, cpu::mix_backward(u, z, dy)),
        cuda: crate::cuda::ops::sk_mix_backward(u, z, dy))
}

pub fn sk_pool(tape: &mut Tape, u: &Var) -> Result<Var> {
    let y = sk_pool_forward(u.value())?;
    let shape = u.shape().to_vec();
    Ok(tape.record("sk_pool", &[u], y, move |dy, _| {
        Ok(vec![Some(sk_pool_backward(dy, &shape)?)])
    }))
}

pub fn sk_mix(tape: &mut Tape, u: &Var, z: &Var) -> Result<Var> {
    let y = sk_mix_forward(u.value(), z.value())?;
    let (us, zv) = (tape.save(u), z.value().clone());
    Ok(tape.record("sk_mix", &[u, z], y, move |dy, needs| {
        let (du, dz) = sk_mix_backward(&us.get()?, &zv, dy)?;
        Ok(vec![needs[0].then_some(du), needs[1].then_some(dz)])
    }))
}
