//! The tape-recording form of the gathered projections. The loss on the gathered batch is
//! replicated on every rank, so its gradient arrives whole on every rank; the backward keeps
//! this rank's rows (see the module doc of [`crate::comm`] for why no reduction belongs here).

use crate::autograd::{Tape, Var};
use crate::comm::{gather_views_placed, Comm};
use crate::Result;

const OP: &str = "gather_views";

/// The gathered global batch on the tape; its gradient flows back to this rank's rows. A world
/// of one gives `z` itself.
pub fn gather_views(tape: &mut Tape, comm: &Comm, z: &Var) -> Result<Var> {
    if comm.world_size() == 1 {
        return Ok(z.clone());
    }
    let (zg, placement) = gather_views_placed(comm.as_ref(), z.value())?;
    Ok(tape.record(OP, &[z], zg, move |dz, _| {
        Ok(vec![Some(placement.own(dz)?)])
    }))
}
