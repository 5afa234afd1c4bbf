//! A learning-rate schedule held on the device, for a training step replayed as a CUDA graph.
//!
//! A replayed launch repeats the parameters it was captured with, so a rate that changes every
//! step cannot be one of them. Instead the whole schedule (one f32 per step of the stage) is
//! uploaded once, with a step counter beside it; LARS reads `table[counter]` on the device and
//! [`DeviceLr::advance`] adds one at the end of the step, inside the graph. The table holds
//! the same f32 values the eager step passes as a parameter (`lr as f32`), so the two paths
//! update the weights with the same bits.

use crate::cuda::alloc::DeviceBuffer;
use crate::cuda::device::{gpu, Gpu};
use crate::cuda::dims::dim;
use crate::cuda::kernels::{self as k, DevPtr, DevPtrMut};
use crate::cuda::module::Launch;
use crate::{Device, Error, Result, Tensor};
use std::sync::Arc;

const OP: &str = "device learning-rate schedule";

/// The rate of an optimizer step: a launch parameter, or the device schedule's current entry.
#[derive(Clone, Copy)]
pub enum LearningRate<'a> {
    Host(f64),
    Device(&'a DeviceLr),
}

/// The schedule's table and step counter on one GPU.
pub struct DeviceLr {
    gpu: Arc<Gpu>,
    table: Tensor,
    counter: DeviceBuffer,
    steps: u32,
}

impl DeviceLr {
    /// `rates[s]` is the rate of step `s`; the counter starts at `start` (a resumed stage).
    /// Steps past the table's end use its last rate.
    pub fn new(device: Device, rates: &[f64], start: usize) -> Result<Self> {
        let Device::Cuda(ordinal) = device else {
            return Err(Error::device(OP, "needs a CUDA device"));
        };
        if rates.is_empty() {
            return Err(Error::shape(OP, "the schedule has no steps"));
        }
        let steps: u32 = dim(rates.len(), "learning-rate schedule: steps")?;
        let gpu = gpu(ordinal)?;
        let host: Vec<f32> = rates.iter().map(|&r| r as f32).collect();
        let table = Tensor::from_vec(host, &[rates.len()])?.to_device(device)?;
        let lr = DeviceLr {
            counter: DeviceBuffer::zeroed(&gpu, 4)?,
            gpu,
            table,
            steps,
        };
        lr.set_step(start)?;
        Ok(lr)
    }

    /// Points the counter at `step` (one launch; the graph's later replays advance it).
    pub fn set_step(&self, step: usize) -> Result<()> {
        let value: u32 = dim(step, "learning-rate schedule: step")?;
        k::lr_schedule_step(&self.gpu, Launch::rows(1, 1), self.counter_mut(), value, 1)
    }

    /// The counter plus one (one launch, at the end of a step).
    pub fn advance(&self) -> Result<()> {
        k::lr_schedule_step(&self.gpu, Launch::rows(1, 1), self.counter_mut(), 0, 0)
    }

    /// The kernel arguments: the table, the counter and the table's length.
    pub fn args(&self) -> Result<(DevPtr<f32>, DevPtr<u32>, u32)> {
        let counter = unsafe { DevPtr::<u32>::from_raw(self.counter.ptr()) };
        Ok((DevPtr::of(&self.table, OP)?, counter, self.steps))
    }

    /// The GPU the schedule lives on.
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    fn counter_mut(&self) -> DevPtrMut<u32> {
        // One u32 owned by this schedule, written only by lr_schedule_step on its stream.
        unsafe { DevPtrMut::<u32>::from_raw(self.counter.ptr()) }
    }
}
