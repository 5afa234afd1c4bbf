//! `--decode-on cpu|gpu|auto`: where pretraining's JPEGs are decoded when the GPU augments.
//! `gpu` hands nvJPEG (loaded at run time) every JPEG it decodes as the CPU would
//! (`data::stream::encoded`); the loader's workers then only read files and draw parameters.
//! `auto` is `gpu` when nvJPEG can be used, else `cpu` with a message saying why; with the
//! augmentation on the CPU, decoding is too.

use super::input::AugmentOn;
use crate::data::SourceDecode;
use crate::{Error, Result};

pub const DECODE_ON_VALUES: [&str; 3] = ["cpu", "gpu", "auto"];

/// `--decode-on value` when the augmentation runs `on`; `nvjpeg` says whether nvJPEG can be
/// used (or why not). Returns where JPEGs are decoded and, when `auto` falls back, what to say.
pub fn resolve(
    value: &str,
    on: AugmentOn,
    nvjpeg: impl FnOnce() -> std::result::Result<(), String>,
) -> Result<(SourceDecode, Option<String>)> {
    match (value, on) {
        ("cpu", _) | ("auto", AugmentOn::Cpu) => Ok((SourceDecode::Host, None)),
        ("gpu", AugmentOn::Cpu) => Err(Error::Config(
            "--decode-on gpu decodes into the GPU augmentation's sources, and the augmentation \
             runs on the CPU (use --augment-on gpu, or --decode-on cpu or auto)"
                .into(),
        )),
        ("gpu", AugmentOn::Gpu) => match nvjpeg() {
            Ok(()) => Ok((SourceDecode::Gpu, None)),
            Err(why) => Err(Error::Config(format!(
                "--decode-on gpu: nvJPEG cannot be used: {why} (use --decode-on cpu or auto)"
            ))),
        },
        ("auto", AugmentOn::Gpu) => Ok(match nvjpeg() {
            Ok(()) => (SourceDecode::Gpu, None),
            Err(why) => (SourceDecode::Host, Some(fallback_message(&why))),
        }),
        (other, _) => Err(Error::Config(format!(
            "--decode-on '{other}' is not one of: {}",
            DECODE_ON_VALUES.join(", ")
        ))),
    }
}

/// What `auto` says when it decodes on the CPU because nvJPEG cannot be used (`why`).
pub fn fallback_message(why: &dyn std::fmt::Display) -> String {
    format!("decode: nvJPEG cannot be used ({why}); JPEGs are decoded on the CPU")
}

/// Whether nvJPEG can be used in this process (or why not).
pub fn nvjpeg_available() -> std::result::Result<(), String> {
    #[cfg(feature = "cuda")]
    return crate::cuda::driver::nvjpeg::available();
    #[cfg(not(feature = "cuda"))]
    Err(crate::cuda_unavailable_reason())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yes() -> std::result::Result<(), String> {
        Ok(())
    }
    fn no() -> std::result::Result<(), String> {
        Err("libnvjpeg.so.13 not found".into())
    }

    #[test]
    fn decode_on_follows_the_augmentation_and_nvjpeg() {
        let (gpu, cpu) = (AugmentOn::Gpu, AugmentOn::Cpu);
        assert_eq!(resolve("gpu", gpu, yes).unwrap(), (SourceDecode::Gpu, None));
        assert_eq!(
            resolve("auto", gpu, yes).unwrap(),
            (SourceDecode::Gpu, None)
        );
        assert_eq!(
            resolve("cpu", gpu, yes).unwrap(),
            (SourceDecode::Host, None)
        );
        assert_eq!(
            resolve("auto", cpu, yes).unwrap(),
            (SourceDecode::Host, None)
        );
        let (d, said) = resolve("auto", gpu, no).unwrap();
        assert_eq!(d, SourceDecode::Host);
        let said = said.unwrap();
        assert!(said.contains("libnvjpeg.so.13 not found"), "{said}");
        assert!(said.contains("decoded on the CPU"), "{said}");
    }

    #[test]
    fn decode_on_gpu_is_refused_where_it_cannot_run() {
        let e = resolve("gpu", AugmentOn::Cpu, yes).unwrap_err().to_string();
        assert!(e.contains("--augment-on gpu"), "{e}");
        let e = resolve("gpu", AugmentOn::Gpu, no).unwrap_err().to_string();
        assert!(e.contains("--decode-on gpu: nvJPEG cannot be used"), "{e}");
        assert!(e.contains("libnvjpeg.so.13 not found"), "{e}");
        let e = resolve("fpga", AugmentOn::Gpu, yes)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'fpga' is not one of: cpu, gpu, auto"), "{e}");
    }
}
