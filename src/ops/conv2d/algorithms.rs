//! `--conv-algorithms` on a device: setting the process's rule (`crate::conv_policy`) for a run,
//! and the summary of what the device's convolutions chose under it.

pub use crate::conv_policy::{conv_algorithms, set_conv_algorithms, ChoiceSummary, ConvAlgorithms};
use crate::{Device, Error, Result};

/// Sets `policy` for a run on `device`; `fastest` on the CPU is refused (naming `what`, the
/// flag or key it came from): there it would change nothing the user could measure.
pub fn use_conv_algorithms(policy: ConvAlgorithms, device: Device, what: &str) -> Result<()> {
    if policy == ConvAlgorithms::Fastest && device == Device::Cpu {
        return Err(Error::Config(format!(
            "{what} fastest chooses among cuDNN's algorithms (--device cuda); the CPU's \
             convolutions have one algorithm, which is deterministic"
        )));
    }
    set_conv_algorithms(policy);
    Ok(())
}

/// The summary of the choices of the convolutions run on `device` under the policy in force
/// since the last [`mark_choices`] (or since its first); None on the CPU and before any.
pub fn choice_summary(device: Device) -> Result<Option<ChoiceSummary>> {
    match device {
        Device::Cpu => Ok(None),
        #[cfg(feature = "cuda")]
        Device::Cuda(i) => {
            crate::cuda::dnn::choice_summary(&crate::cuda::gpu(i)?, conv_algorithms())
        }
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => Err(Error::device("conv2d", crate::cuda_unavailable_reason())),
    }
}

/// Starts the next [`choice_summary`] on `device` afresh (a no-op on the CPU).
pub fn mark_choices(device: Device) -> Result<()> {
    match device {
        Device::Cpu => Ok(()),
        #[cfg(feature = "cuda")]
        Device::Cuda(i) => crate::cuda::dnn::mark_choices(&crate::cuda::gpu(i)?),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => Err(Error::device("conv2d", crate::cuda_unavailable_reason())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_refuses_fastest_and_has_no_summary() {
        let before = conv_algorithms();
        let e = use_conv_algorithms(ConvAlgorithms::Fastest, Device::Cpu, "--conv-algorithms");
        let m = e.unwrap_err().to_string();
        assert!(
            m.contains("--conv-algorithms fastest") && m.contains("cuda"),
            "{m}"
        );
        assert_eq!(conv_algorithms(), before, "a refused policy was set");
        use_conv_algorithms(ConvAlgorithms::Deterministic, Device::Cpu, "k").unwrap();
        mark_choices(Device::Cpu).unwrap();
        assert_eq!(choice_summary(Device::Cpu).unwrap(), None);
    }
}
