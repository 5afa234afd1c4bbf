//! Pretraining's input, on the path `--augment-on` chooses: `cpu` (the loader's workers decode
//! and augment, bicubic resampling; the f32 views go up through pinned buffers) or `gpu` (the
//! workers decode and draw the random parameters only, from the same generators; the u8
//! sources go up in one copy per step and `data::gpu_input` augments them with bilinear
//! resampling into views in the training dtype). `auto` is `gpu` on a CUDA device with RGB
//! data, `cpu` otherwise. With the GPU path, `--decode-on` (`train::decode_on`) may leave the
//! JPEGs to nvJPEG.

use super::common::{stack, Env};
use super::dist_run::ShardedLoader;
use super::upload::BatchUploader;
use crate::data::{
    AugmentConfig, Batches, Interpolation, PretrainAugment, RawBatches, SourceDecode,
};
use crate::{Device, Error, Result, Tensor};
use std::sync::Arc;

pub const AUGMENT_ON_VALUES: [&str; 3] = ["cpu", "gpu", "auto"];

/// Where the augmentation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AugmentOn {
    Cpu,
    Gpu,
}

/// `--augment-on value` for a run on `device` with `channels`-channel images.
pub fn resolve(value: &str, device: Device, channels: usize) -> Result<AugmentOn> {
    let gpu = matches!(device, Device::Cuda(_));
    match value {
        "cpu" => Ok(AugmentOn::Cpu),
        "auto" if gpu && channels == 3 => Ok(AugmentOn::Gpu),
        "auto" => Ok(AugmentOn::Cpu),
        "gpu" if !gpu => Err(Error::Config(format!(
            "--augment-on gpu needs a CUDA device, and the run is on {device:?} (use --device \
             cuda, or --augment-on cpu or auto)"
        ))),
        "gpu" if channels != 3 => Err(Error::Config(format!(
            "--augment-on gpu takes RGB images, and the dataset has {channels} channel(s) (use \
             --augment-on cpu or auto)"
        ))),
        "gpu" => Ok(AugmentOn::Gpu),
        other => Err(Error::Config(format!(
            "--augment-on '{other}' is not one of: {}",
            AUGMENT_ON_VALUES.join(", ")
        ))),
    }
}

/// One step's input: both views stacked `[2B, H, W, C]` on the training device.
pub struct InputBatch {
    pub x: Tensor,
    /// Images (B) in this rank's batch.
    pub images: usize,
    /// Whether `x` is at a new address (always, unless [`TrainInput::keep_fixed`] is on and the
    /// shape did not change): a step replayed as a CUDA graph must be captured again.
    pub moved: bool,
}

enum Path {
    Cpu(BatchUploader),
    #[cfg(feature = "cuda")]
    Gpu(Box<crate::data::gpu_input::GpuInput>, crate::DType),
}

/// The loader and the path its batches take to the device.
pub struct TrainInput {
    loader: ShardedLoader,
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    aug: AugmentConfig,
    path: Path,
    device: Device,
    /// Where the GPU path's JPEGs are decoded.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    decode: SourceDecode,
    /// `Some` when batches are kept at one address; holds the current buffer.
    fixed: Option<Option<Tensor>>,
}

impl TrainInput {
    /// Pretraining's input for `env` with augmentation `aug` and two views per image.
    pub fn new(env: &Env, aug: AugmentConfig, batch_size: usize) -> Result<Self> {
        let on = resolve(&env.cfg.pretrain.augment_on, env.device, env.channels())?;
        // The GPU kernel resamples bilinearly; the CPU keeps the configured filter (bicubic).
        let aug = match on {
            AugmentOn::Gpu => AugmentConfig {
                interpolation: Interpolation::Bilinear,
                ..aug
            },
            AugmentOn::Cpu => aug,
        };
        let value = env.cfg.pretrain.decode_on.as_str();
        #[cfg_attr(not(feature = "cuda"), allow(unused_mut))]
        let (mut decode, mut said) =
            super::decode_on::resolve(value, on, super::decode_on::nvjpeg_available)?;
        let path = match (on, env.device) {
            #[cfg(feature = "cuda")]
            (AugmentOn::Gpu, Device::Cuda(i)) => {
                let dtype = env.activations().compute.unwrap_or(crate::DType::F32);
                let mut gi = crate::data::gpu_input::GpuInput::new(i)?;
                if decode == SourceDecode::Gpu {
                    match gi.decode_jpegs() {
                        Ok(backend) => {
                            said = Some(format!(
                                "decode: JPEGs on the GPU (nvJPEG, {backend} backend)"
                            ))
                        }
                        Err(e) if value == "auto" => {
                            said = Some(super::decode_on::fallback_message(&e));
                            decode = SourceDecode::Host;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Path::Gpu(Box::new(gi), dtype)
            }
            (AugmentOn::Gpu, d) => {
                return Err(Error::Config(format!(
                    "--augment-on gpu: this build has no CUDA backend for {d:?}"
                )))
            }
            (AugmentOn::Cpu, _) => Path::Cpu(BatchUploader::new()),
        };
        if let (Some(s), true) = (said, env.run.is_writer()) {
            eprintln!("{s}");
        }
        let loader = ShardedLoader::new(
            env,
            env.splits.train.clone(),
            Arc::new(PretrainAugment::new(aug.clone())?),
            env.loader_config(batch_size, 2, None, true),
        )?;
        Ok(TrainInput {
            loader,
            aug,
            path,
            device: env.device,
            decode,
            fixed: None,
        })
    }

    /// From now on every batch of an unchanged shape is written into the same device tensor
    /// (the fixed input a step replayed as a CUDA graph reads).
    pub fn keep_fixed(&mut self) {
        self.fixed.get_or_insert(None);
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.loader.batches_per_epoch()
    }

    /// The batches of `epoch` after the first `skip` (built, never uploaded).
    pub fn epoch(&mut self, epoch: u64, skip: usize) -> Result<Epoch<'_>> {
        let source = match &self.path {
            Path::Cpu(_) => Source::Views(self.loader.epoch(epoch)?),
            #[cfg(feature = "cuda")]
            Path::Gpu(..) => Source::Raw(self.loader.raw_epoch(epoch, &self.aug, self.decode)?),
        };
        let mut e = Epoch {
            source,
            input: self,
        };
        for _ in 0..skip {
            if let Some(Err(err)) = e.source.next_any() {
                return Err(err);
            }
        }
        Ok(e)
    }
}

enum Source {
    Views(Batches),
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    Raw(RawBatches),
}

impl Source {
    /// Steps past one batch, keeping only its error.
    fn next_any(&mut self) -> Option<Result<()>> {
        match self {
            Source::Views(b) => b.next().map(|r| r.map(|_| ())),
            Source::Raw(b) => b.next().map(|r| r.map(|_| ())),
        }
    }
}

/// One epoch's input batches, on the device.
pub struct Epoch<'a> {
    source: Source,
    input: &'a mut TrainInput,
}

impl Iterator for Epoch<'_> {
    type Item = Result<InputBatch>;

    fn next(&mut self) -> Option<Result<InputBatch>> {
        let device = self.input.device;
        let fixed = &mut self.input.fixed;
        Some(match (&mut self.source, &mut self.input.path) {
            (Source::Views(b), Path::Cpu(up)) => b.next()?.and_then(|b| {
                let host = stack(&b.views)?;
                let images = b.views[0].shape()[0];
                if let Some(Some(dst)) = fixed.as_ref() {
                    if dst.shape() == host.shape() && dst.dtype() == host.dtype() {
                        up.put_into(&host, dst)?;
                        let x = dst.clone();
                        return Ok(InputBatch {
                            x,
                            images,
                            moved: false,
                        });
                    }
                }
                Ok(settle(fixed, up.put(host, device)?, images))
            }),
            #[cfg(feature = "cuda")]
            (Source::Raw(b), Path::Gpu(gi, dtype)) => b.next()?.and_then(|b| {
                let x = gi.views(&self.input.aug, &b, *dtype)?;
                if let Some(Some(dst)) = fixed.as_ref() {
                    if dst.shape() == x.shape() && crate::cuda::overwrite(dst, &x)? {
                        let x = dst.clone();
                        return Ok(InputBatch {
                            x,
                            images: b.images(),
                            moved: false,
                        });
                    }
                }
                Ok(settle(fixed, x, b.images()))
            }),
            _ => Err(Error::Config("input batches of the other path".into())),
        })
    }
}

/// A batch at a new address, kept as the fixed buffer when batches are kept at one.
fn settle(fixed: &mut Option<Option<Tensor>>, x: Tensor, images: usize) -> InputBatch {
    if let Some(slot) = fixed {
        *slot = Some(x.clone());
    }
    InputBatch {
        x,
        images,
        moved: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn augment_on_resolves_by_device_and_refuses_gpu_without_one() {
        let cuda = Device::Cuda(0);
        assert_eq!(resolve("auto", cuda, 3).unwrap(), AugmentOn::Gpu);
        assert_eq!(resolve("auto", cuda, 1).unwrap(), AugmentOn::Cpu);
        assert_eq!(resolve("auto", Device::Cpu, 3).unwrap(), AugmentOn::Cpu);
        assert_eq!(resolve("cpu", cuda, 3).unwrap(), AugmentOn::Cpu);
        assert_eq!(resolve("gpu", cuda, 3).unwrap(), AugmentOn::Gpu);
        let e = resolve("gpu", Device::Cpu, 3).unwrap_err().to_string();
        assert!(e.contains("--augment-on gpu needs a CUDA device"), "{e}");
        let e = resolve("gpu", cuda, 1).unwrap_err().to_string();
        assert!(e.contains("RGB"), "{e}");
        let e = resolve("tpu", cuda, 3).unwrap_err().to_string();
        assert!(e.contains("'tpu' is not one of: cpu, gpu, auto"), "{e}");
    }
}
