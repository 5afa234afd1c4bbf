//! Data parallelism: W ranks (threads of one process, or one GPU each through NCCL) each hold a
//! replica of the network and a disjoint shard of the batch, and together compute the step of
//! one process holding the whole batch.
//!
//! A [`Communicator`] gives the collectives: [`Single`] is a world of one (identities),
//! [`ThreadGroup`] runs ranks as threads sharing buffers (CPU data parallelism and tests; sums
//! in rank order, so results do not depend on thread timing), and `Nccl` (feature `cuda`) one
//! communicator per GPU.
//!
//! **What a step computes** ([`crate::train::contrastive_step`]). Rank r holds the views [a_r; b_r] of its
//! n images. Its forward runs with *synchronised batch norm* ([`crate::ops::batch_norm`]): the
//! statistics are those of all ranks' rows together (per-rank mean, M2 and count combined
//! exactly), so every rank normalises with the statistics of the global batch. It then gathers
//! the normalised projections of all ranks ([`crate::ops::gather_views`]) into the global batch
//! [a_0; …; a_{W−1}; b_0; …; b_{W−1}], exactly the rows one process would hold, and computes
//! the NT-Xent loss L of that whole batch: every rank computes the same L (replicated; the
//! loss is fused, so this costs O(N·d) memory). Backward gives dL/dZ for all of Z; each rank
//! keeps the rows of its own shard and back-propagates them through its own graph. Batch norm
//! adds up Σdy and Σdy·x̂ across ranks in its backward, so rank r's dx is the exact derivative
//! of L with respect to its inputs, through the global statistics too.
//!
//! **Why the parameter gradients are summed, not averaged.** L depends on θ through every
//! rank's rows: dL/dθ = Σ_r (∂L/∂Z_r)·(∂Z_r/∂θ), and rank r's backward computes exactly term r
//! (its rows of dL/dZ through its own graph; a BN γ or β gets the partial sums over its rows).
//! The full gradient is therefore the sum of the ranks' gradients. The familiar mean of
//! per-replica training comes from a different loss, the average of W per-shard losses, each
//! a mean over its own shard; here the loss is already the mean over the global batch, and
//! reducing the gathered gradient (all of dL/dZ from every rank) would count each row W times.
//! Averaging would divide every gradient by W: with LARS that rescales the update of the BN
//! and bias parameters (plain momentum SGD), and changes the others through weight decay.
//!
//! A world of one takes exactly the single-process path: no collective runs, and results are
//! bit-identical to a step without a communicator.

mod gather;
pub mod launch;
mod moments;
#[cfg(feature = "mpi")]
pub mod mpi;
#[cfg(feature = "cuda")]
mod nccl;
#[cfg(feature = "cuda")]
mod nccl_stream;
#[cfg(feature = "cuda")]
mod nccl_watch;
pub mod process;
mod rendezvous;
mod rows;
pub mod sampler;
mod single;
#[cfg(test)]
mod tests;
mod thread_group;

pub use gather::{gather_views_forward, gather_views_placed, Placement};
pub use moments::{global_moments, GlobalMoments};
#[cfg(feature = "cuda")]
pub use nccl::{
    fault_message as nccl_fault_message, Nccl, NcclId, DEFAULT_TIMEOUT as NCCL_DEFAULT_TIMEOUT,
};
pub use rows::{concat_rows, narrow_rows};
pub use single::Single;
pub use thread_group::ThreadGroup;

use crate::{Result, Tensor};
use std::sync::Arc;

/// The collectives of a group of W ranks. Every rank must call the same collectives in the same
/// order with tensors of the same dtype (and shapes as each method says); every rank gets the
/// same result.
pub trait Communicator: Send + Sync {
    /// This rank, in 0..world_size.
    fn rank(&self) -> usize;
    fn world_size(&self) -> usize;
    /// The element-wise sums over the ranks of each tensor of `ts` (same shapes on every
    /// rank), returned as new tensors on the caller's device.
    fn all_reduce_sum(&self, ts: &[Tensor]) -> Result<Vec<Tensor>>;
    /// Starts [`Communicator::all_reduce_sum`] of `ts`; the sums come from the handle's
    /// `wait`. Collectives started this way count in the order of calls like any other. The
    /// default runs the collective at once (NCCL's own enqueues it on a side stream ordered by
    /// events, MPI's starts an `MPI_Iallreduce`).
    fn all_reduce_sum_start(&self, ts: Vec<Tensor>) -> Result<Box<dyn PendingSum + '_>> {
        Ok(Box::new(Ready(self.all_reduce_sum(&ts)?)))
    }
    /// Every rank's `t` concatenated along dimension 0 in rank order. The dimensions after the
    /// first must agree; the first may differ between ranks.
    fn all_gather(&self, t: &Tensor) -> Result<Tensor>;
    /// As [`Communicator::all_gather`] when every rank passes the same shape (the caller
    /// vouches for it): no exchange of the row counts first, so on a GPU nothing reaches the
    /// host and nothing waits.
    fn all_gather_same(&self, t: &Tensor) -> Result<Tensor> {
        self.all_gather(t)
    }
    /// Rank 0's `t` on every rank; the others pass a tensor of the same shape as a template.
    fn broadcast(&self, t: &Tensor) -> Result<Tensor>;
    /// Returns once every rank has called it.
    fn barrier(&self) -> Result<()>;
}

/// An all-reduce in flight ([`Communicator::all_reduce_sum_start`]).
pub trait PendingSum {
    /// The sums, once every rank has contributed.
    fn wait(self: Box<Self>) -> Result<Vec<Tensor>>;
}

/// Sums already there.
pub struct Ready(pub Vec<Tensor>);

impl PendingSum for Ready {
    fn wait(self: Box<Self>) -> Result<Vec<Tensor>> {
        Ok(self.0)
    }
}

/// Ends this process's part in a multi-process job after a successful run (finalises MPI when
/// it was started); nothing to do otherwise.
pub fn finish() -> Result<()> {
    #[cfg(feature = "mpi")]
    mpi::finalize()?;
    Ok(())
}

/// A shared handle to a communicator (what [`crate::nn::Ctx`] and the tape's closures hold).
pub type Comm = Arc<dyn Communicator>;

/// The world of one, as a shared handle.
pub fn single() -> Comm {
    Arc::new(Single)
}
