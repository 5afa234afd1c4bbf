//! Choosing and driving devices, on the CUDA runtime's floor: `DeviceRequest::resolve` (what
//! this build and machine offer for a request) and `synchronize`. The tensor (`src/tensor`)
//! names devices and requests but does not call the runtime.

use crate::tensor::{Device, DeviceRequest};
use crate::{Error, Result};

impl DeviceRequest {
    /// Resolves the request against what this build and machine offer.
    pub fn resolve(self) -> Result<Device> {
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
                    Err(Error::device(
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
                    Err(Error::device("device", crate::cuda_unavailable_reason()))
                }
            }
        }
    }
}

/// Waits until everything queued on `device` has run (a no-op on the CPU, which is synchronous).
pub fn synchronize(device: Device) -> Result<()> {
    match device {
        Device::Cpu => Ok(()),
        #[cfg(feature = "cuda")]
        Device::Cuda(i) => crate::cuda::gpu(i)?.synchronize(),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => Err(Error::device(
            "synchronize",
            crate::cuda_unavailable_reason(),
        )),
    }
}
