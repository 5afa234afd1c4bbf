//! The tape-recording form of the sk ops: each forward on [`Var`]s records a closure
//! that calls the raw backward functions of [`super`].

use super::*;
use crate::autograd::{Tape, Var};

/// [`sk_pool`] as the first half of a linked pair.
pub fn sk_pool_linked(tape: &mut Tape, u: &Var) -> Result<(Var, SkLink)> {
    let y = sk_pool_forward(u.value())?;
    let shape = u.shape().to_vec();
    let link = SkLink::default();
    let pending = link.pending.clone();
    let s = tape.record("sk_pool", &[u], y, move |ds, _| {
        let mix = pending.borrow_mut().take();
        let mix = mix.as_ref().map(|(dy, z)| (dy, z));
        Ok(vec![Some(sk_backward_du(mix, Some(ds), &shape)?)])
    });
    *link.pooled.borrow_mut() = s.requires_grad();
    Ok((s, link))
}

/// [`sk_mix`] as the second half of a linked pair: `z` must be computed from the pool's output
/// (so the logits' gradient reaches the pool's backward, which adds the mix's term of du).
pub fn sk_mix_linked(tape: &mut Tape, u: &Var, z: &Var, link: &SkLink) -> Result<Var> {
    let y = sk_mix_forward(u.value(), z.value())?;
    let (us, zv, link) = (tape.save(u), z.value().clone(), link.clone());
    let shape = u.shape().to_vec();
    Ok(tape.record("sk_mix", &[u, z], y, move |dy, needs| {
        let dz = match needs[1] {
            true => Some(sk_mix_backward_dz(&us.get()?, &zv, dy)?),
            false => None,
        };
        if needs[0] && needs[1] && *link.pooled.borrow() {
            *link.pending.borrow_mut() = Some((dy.clone(), zv));
            return Ok(vec![None, dz]);
        }
        let du = match needs[0] {
            true => Some(sk_backward_du(Some((dy, &zv)), None, &shape)?),
            false => None,
        };
        Ok(vec![du, dz])
    }))
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
