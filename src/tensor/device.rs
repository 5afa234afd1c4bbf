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

impl DeviceRequest {
    /// Resolves the request against what this build and machine offer.
    pub fn resolve(self) -> crate::Result<Device> {
        match self {
            DeviceRequest::Cpu => Ok(Device::Cpu),
            DeviceRequest::Auto => Ok(if crate::cuda_available() {
                Device::Cuda(0)
            } else {
                Device::Cpu
            }),
            DeviceRequest::CudaEmu(i) => {
                #[cfg(feature = "cuda-emu")]
                {
                    crate::cuda::driver::select(crate::cuda::driver::Mode::Emulated)?;
                    DeviceRequest::Cuda(i).resolve()
                }
                #[cfg(not(feature = "cuda-emu"))]
                {
                    let _ = i;
                    Err(crate::Error::device(
                        "device",
                        "cuda-emu is the emulated CUDA device, which this build does not have \
                         (build with --features cuda-emu)",
                    ))
                }
            }
            DeviceRequest::Cuda(i) => {
                if crate::cuda_available() {
                    Ok(Device::Cuda(i))
                } else {
                    Err(crate::Error::device(
                        "device",
                        crate::cuda_unavailable_reason(),
                    ))
                }
            }
        }
    }
}

/// Waits until everything queued on `device` has run (a no-op on the CPU, which is synchronous).
pub fn synchronize(device: Device) -> crate::Result<()> {
    match device {
        Device::Cpu => Ok(()),
        #[cfg(feature = "cuda")]
        Device::Cuda(i) => crate::cuda::gpu(i)?.synchronize(),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => Err(crate::Error::device(
            "synchronize",
            crate::cuda_unavailable_reason(),
        )),
    }
}
