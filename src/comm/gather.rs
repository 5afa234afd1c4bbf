//! All-gather of the projections of both views, for global negatives (the tape function is
//! [`crate::ops::gather_views`]).
//!
//! Rank r's rows are [a_r; b_r] (its n_r images' view a, then view b); the gathered batch is
//! [a_0; …; a_{W−1}; b_0; …; b_{W−1}], the rows one process holding the whole batch would have,
//! in the layout NT-Xent expects. The loss on the gathered batch is replicated on every rank,
//! so its gradient arrives whole on every rank; the backward keeps this rank's rows (see the
//! module doc of [`crate::comm`] for why no reduction belongs here).

use super::{concat_rows, narrow_rows, Communicator};
use crate::{DType, Error, Result, Tensor};

const OP: &str = "gather_views";

/// Where this rank's images sit in the global batch: (offset, own count, global count).
pub struct Placement {
    offset: usize,
    n: usize,
    total: usize,
}

fn place(comm: &dyn Communicator, z: &Tensor) -> Result<Placement> {
    let (rows, _) = z.dims2(OP)?;
    if rows == 0 || rows % 2 != 0 {
        return Err(Error::shape(
            OP,
            format!("needs [view a; view b] rows, got shape {:?}", z.shape()),
        ));
    }
    let n = rows / 2;
    let mine = Tensor::from_f64(&[n as f64], &[1], DType::F32)?.to_device(z.device())?;
    let counts: Vec<usize> = comm
        .all_gather(&mine)?
        .to_vec_f64()?
        .into_iter()
        .map(|c| c as usize)
        .collect();
    Ok(Placement {
        offset: counts[..comm.rank()].iter().sum(),
        n,
        total: counts.iter().sum(),
    })
}

impl Placement {
    /// This rank's rows [a_r; b_r] of `dz`, a gradient over the gathered batch.
    pub fn own(&self, dz: &Tensor) -> Result<Tensor> {
        let a = narrow_rows(dz, self.offset, self.n)?;
        let b = narrow_rows(dz, self.total + self.offset, self.n)?;
        concat_rows(&[a, b])
    }
}

fn gather(comm: &dyn Communicator, z: &Tensor, p: &Placement) -> Result<Tensor> {
    let a = comm.all_gather(&narrow_rows(z, 0, p.n)?)?;
    let b = comm.all_gather(&narrow_rows(z, p.n, p.n)?)?;
    concat_rows(&[a, b])
}

/// The gathered global batch (no gradient: the momentum network's projections for the queue).
pub fn gather_views_forward(comm: &dyn Communicator, z: &Tensor) -> Result<Tensor> {
    if comm.world_size() == 1 {
        return Ok(z.clone());
    }
    Ok(gather_views_placed(comm, z)?.0)
}

/// The gathered global batch and where this rank's rows sit in it, whose [`Placement::own`]
/// is the gather's backward (a world of several).
pub fn gather_views_placed(comm: &dyn Communicator, z: &Tensor) -> Result<(Tensor, Placement)> {
    let p = place(comm, z)?;
    Ok((gather(comm, z, &p)?, p))
}
