//! The communication stream of one NCCL communicator, so that the bucketed all-reduce
//! ([`super::Communicator::all_reduce_sum_start`]) overlaps the backward still running on the
//! device's stream. Ordering, by events only (the host never waits): before the collectives,
//! the side stream waits for the compute stream (the gradients and the freshly allocated
//! outputs are ready); when the sums are asked for, the compute stream waits for the side
//! stream, so whatever reads them, or frees the gradients, runs after the collectives. The
//! pending sum keeps the gradient tensors alive until then: their memory returns to the
//! compute stream's pool only after that wait.

use super::PendingSum;
use crate::cuda::driver::cu::CUstream;
use crate::cuda::driver::event;
use crate::{Error, Result, Tensor};

pub(super) struct SideStream(CUstream);

// A stream handle may be used from any thread of its context.
unsafe impl Send for SideStream {}
unsafe impl Sync for SideStream {}

impl SideStream {
    /// A new stream of the context current on this thread.
    pub fn new() -> Result<Self> {
        event::stream_create()
            .map(SideStream)
            .map_err(|e| Error::Cuda(format!("cuStreamCreate (NCCL side stream): {e:?}")))
    }

    pub fn handle(&self) -> CUstream {
        self.0
    }
}

impl Drop for SideStream {
    fn drop(&mut self) {
        let _ = unsafe { event::stream_destroy(self.0) };
    }
}

/// `to` waits on the device for what `from` has been given so far.
pub(super) fn order(from: CUstream, to: CUstream) -> Result<()> {
    unsafe { event::order(from, to) }
        .map_err(|e| Error::Cuda(format!("cuEventRecord/cuStreamWaitEvent: {e:?}")))
}

/// Sums being computed on a side stream.
pub(super) struct OnSide {
    pub sums: Vec<Tensor>,
    /// The gradients the collectives read, alive until the compute stream waited.
    pub inputs: Vec<Tensor>,
    pub side: CUstream,
    pub compute: CUstream,
    pub joined: bool,
}

impl PendingSum for OnSide {
    fn wait(mut self: Box<Self>) -> Result<Vec<Tensor>> {
        self.joined = true;
        order(self.side, self.compute)?;
        self.inputs.clear();
        Ok(std::mem::take(&mut self.sums))
    }
}

impl Drop for OnSide {
    /// Never waited for (an error cut the step short): the compute stream still waits before
    /// the buffers the side stream uses go back to its pool.
    fn drop(&mut self) {
        if !self.joined {
            let _ = order(self.side, self.compute);
        }
    }
}
