//! A training step's loss and contrastive accuracy as the step left them: on a GPU, device
//! scalars that the host reads only when it logs (reading waits for the device), so the step
//! itself never synchronises; on the CPU, the same values as always.

use crate::ops::ntxent::Accuracy;
use crate::{Result, Tensor};

#[derive(Clone, Debug)]
pub struct StepStats {
    /// The mean loss, shape [] (in the projections' dtype).
    pub loss: Tensor,
    pub accuracy: Accuracy,
}

impl StepStats {
    /// (loss, contrastive accuracy) read back to the host.
    pub fn read(&self) -> Result<(f64, f64)> {
        Ok((self.loss.item()?, self.accuracy.read()?))
    }
}
