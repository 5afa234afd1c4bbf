//! The tape-recording form of the pool ops: each forward on [`Var`]s records a closure
//! that calls the raw backward functions of [`super`].

use super::*;
use crate::autograd::{Tape, Var};

pub fn max_pool2d(tape: &mut Tape, x: &Var, s: PoolSpec) -> Result<Var> {
    let y = max_pool2d_forward(x.value(), &s)?;
    let (xv, yv) = (x.value().clone(), y.clone());
    Ok(tape.record("max_pool2d", &[x], y, move |dy, _| {
        Ok(vec![Some(max_pool2d_backward(&xv, &yv, dy, &s)?)])
    }))
}

/// Average pool (the ResNet-D shortcut: [`AvgPoolSpec::resnet_d_shortcut`]).
pub fn avg_pool2d(tape: &mut Tape, x: &Var, s: AvgPoolSpec) -> Result<Var> {
    let y = avg_pool2d_forward(x.value(), &s)?;
    let shape = x.shape().to_vec();
    Ok(tape.record("avg_pool2d", &[x], y, move |dy, _| {
        Ok(vec![Some(avg_pool2d_backward(dy, &s, &shape)?)])
    }))
}

/// [N, H, W, C] → [N, C].
pub fn global_avg_pool(tape: &mut Tape, x: &Var) -> Result<Var> {
    let y = global_avg_pool_forward(x.value())?;
    let shape = x.shape().to_vec();
    Ok(tape.record("global_avg_pool", &[x], y, move |dy, _| {
        Ok(vec![Some(global_avg_pool_backward(dy, &shape)?)])
    }))
}
