//! Which backend computes an op: the CPU reference or a CUDA device.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    Cpu,
    Cuda(usize),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// What the user asked for on the command line: a device, or `auto` (the GPU when one is there).
/// `DeviceRequest::resolve` (`src/device_select.rs`, on the CUDA runtime's floor) turns it into a
/// [`Device`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceRequest {
    Cpu,
    Cuda(usize),
    /// The CUDA backend on the emulated device (`cuda-emu`, `cuda-emu:N`; feature `cuda-emu`).
    CudaEmu(usize),
    Auto,
}

impl FromStr for DeviceRequest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceRequest::Cpu),
            "auto" => Ok(DeviceRequest::Auto),
            "cuda" => Ok(DeviceRequest::Cuda(0)),
            "cuda-emu" => Ok(DeviceRequest::CudaEmu(0)),
            _ => match (
                s.strip_prefix("cuda:").map(str::parse::<usize>),
                s.strip_prefix("cuda-emu:").map(str::parse::<usize>),
            ) {
                (Some(Ok(i)), _) => Ok(DeviceRequest::Cuda(i)),
                (_, Some(Ok(i))) => Ok(DeviceRequest::CudaEmu(i)),
                _ => Err(format!(
                    "unknown device '{s}': expected cpu, cuda, cuda:N, cuda-emu, cuda-emu:N or auto"
                )),
            },
        }
    }
}
