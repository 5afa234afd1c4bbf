//! The loss and contrastive accuracy of the steps since the last log line, summed where the
//! steps computed them: on a GPU in two device scalars updated in place (no read-back, no
//! wait, the same addresses every step, so the sums work inside a step replayed as a CUDA
//! graph), on the CPU in host numbers. [`LossWindow::take_means`] reads them once per log
//! interval (one wait) and starts a new window: pretraining's logged `loss` and
//! `contrastive_acc` are means over the steps of the interval.

use super::step_stats::StepStats;
use crate::ops::elementwise::{add_forward, scale_forward};
use crate::ops::ntxent::Accuracy;
use crate::{DType, Device, Result, Tensor};

/// Sums of loss and accuracy over the steps since the last read.
#[derive(Default)]
pub struct LossWindow {
    /// Device sums (f32 scalars), created by the first device step.
    device: Option<(Tensor, Tensor)>,
    host: (f64, f64),
    steps: usize,
}

/// `sum + x` written into `sum`'s buffer on a GPU (a fixed address), else replacing it.
fn accumulate(sum: &mut Tensor, x: &Tensor) -> Result<()> {
    let next = add_forward(sum, &x.to_dtype(DType::F32)?)?;
    #[cfg(feature = "cuda")]
    if crate::cuda::overwrite(sum, &next)? {
        return Ok(());
    }
    *sum = next;
    Ok(())
}

impl LossWindow {
    pub fn new() -> Self {
        Self::default()
    }

    /// Steps added since the last read.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Adds a step's figures where they are (on a GPU nothing is read back).
    pub fn add(&mut self, s: &StepStats) -> Result<()> {
        self.steps += 1;
        let frac = match &s.accuracy {
            Accuracy::Value(v) => {
                self.host.1 += v;
                None
            }
            Accuracy::Hits { count, anchors } => Some(scale_forward(
                &count.to_dtype(DType::F32)?,
                1.0 / *anchors as f64,
            )?),
        };
        if s.loss.device() == Device::Cpu {
            self.host.0 += s.loss.item()?;
        } else {
            let (l, a) = self.device_sums(s.loss.device())?;
            accumulate(l, &s.loss)?;
            if let Some(f) = frac {
                accumulate(a, &f)?;
            }
        }
        Ok(())
    }

    /// Counts a step whose figures a replayed CUDA graph added to the device sums (the graph
    /// holds the captured [`LossWindow::add`]).
    pub fn add_replayed(&mut self) {
        self.steps += 1;
    }

    /// Adds figures already on the host (the distributed and micro-batched steps read them).
    pub fn add_host(&mut self, loss: f64, accuracy: f64) {
        self.steps += 1;
        self.host.0 += loss;
        self.host.1 += accuracy;
    }

    fn device_sums(&mut self, device: Device) -> Result<&mut (Tensor, Tensor)> {
        if self.device.is_none() {
            let z = || Tensor::zeros(&[], DType::F32, device);
            self.device = Some((z()?, z()?));
        }
        Ok(self.device.as_mut().expect("set above"))
    }

    /// (mean loss, mean accuracy) over the steps since the last read (a GPU's sums are read
    /// back: one wait), and a new window; `None` when no step was added.
    pub fn take_means(&mut self) -> Result<Option<(f64, f64)>> {
        if self.steps == 0 {
            return Ok(None);
        }
        let (mut loss, mut acc) = std::mem::take(&mut self.host);
        if let Some((l, a)) = &mut self.device {
            loss += l.item()?;
            acc += a.item()?;
            for t in [l, a] {
                let zero = Tensor::zeros(&[], DType::F32, t.device())?;
                #[cfg(feature = "cuda")]
                if crate::cuda::overwrite(t, &zero)? {
                    continue;
                }
                *t = zero;
            }
        }
        let n = std::mem::take(&mut self.steps) as f64;
        Ok(Some((loss / n, acc / n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_over_the_window_then_a_fresh_window() {
        let mut w = LossWindow::new();
        assert_eq!(w.take_means().unwrap(), None);
        for (l, a) in [(2.0, 0.25), (4.0, 0.75)] {
            let s = StepStats {
                loss: Tensor::full(&[], l, DType::F32, Device::Cpu).unwrap(),
                accuracy: Accuracy::Value(a),
            };
            w.add(&s).unwrap();
        }
        w.add_host(6.0, 0.5);
        assert_eq!(w.take_means().unwrap(), Some((4.0, 0.5)));
        w.add_host(1.0, 1.0);
        assert_eq!(w.take_means().unwrap(), Some((1.0, 1.0)));
    }
}
