//! The tape-recording form of the batch_norm ops: each forward on [`Var`]s records a closure
//! that calls the raw backward functions of [`super`].

use super::*;
use crate::autograd::{Tape, Var};

/// Batch norm on the tape. `beta` is optional (the projection head's last layer has none).
/// Returns the output and, in train mode, the batch statistics.
pub fn batch_norm(
    tape: &mut Tape,
    x: &Var,
    gamma: &Var,
    beta: Option<&Var>,
    mode: BnMode,
) -> Result<(Var, Option<BatchStats>)> {
    let bv = beta.map(|b| b.value());
    let (y, mean, invstd, stats) = match mode {
        BnMode::Train { eps, running } => {
            let (y, (mean, invstd, var_u, running)) =
                batch_norm_train_forward_running(x.value(), gamma.value(), bv, eps, running)?;
            let stats = BatchStats {
                mean: mean.clone(),
                var_unbiased: var_u,
                running,
            };
            (y, mean, invstd, Some(stats))
        }
        BnMode::Eval { mean, var, eps } => {
            let (y, invstd) =
                batch_norm_eval_forward(x.value(), gamma.value(), bv, mean, var, eps)?;
            (y, mean.clone(), invstd, None)
        }
    };
    let batch_stats = stats.is_some();
    let (xv, gv) = (x.value().clone(), gamma.value().clone());
    let mut inputs = vec![x, gamma];
    inputs.extend(beta);
    let out = tape.record("batch_norm", &inputs, y, move |dy, needs| {
        let (dx, dg, db) = batch_norm_backward(&xv, dy, &gv, &mean, &invstd, batch_stats)?;
        let mut r = vec![needs[0].then_some(dx), needs[1].then_some(dg)];
        if needs.len() == 3 {
            r.push(needs[2].then_some(db));
        }
        Ok(r)
    });
    Ok((out, stats))
}
