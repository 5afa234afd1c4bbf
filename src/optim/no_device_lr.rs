//! Without the CUDA backend there is no device schedule: the graph-replayed step it serves
//! never runs (`GraphedStep` is eager on the CPU), so the type has no values.

use crate::{Device, Error, Result};

pub enum DeviceLr {}

impl DeviceLr {
    pub fn new(_: Device, _: &[f64], _: usize) -> Result<Self> {
        Err(Error::device(
            "device learning-rate schedule",
            crate::cuda_unavailable_reason(),
        ))
    }

    pub fn set_step(&self, _: usize) -> Result<()> {
        match *self {}
    }
}
