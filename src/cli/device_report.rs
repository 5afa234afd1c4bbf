//! `simclr info --device cuda|cuda-emu|cpu`: the CUDA library and device report
//! (`cuda::report`) instead of an architecture summary. Exits non-zero, after printing the
//! report, when the device cannot be used, so scripts can stop at once.

use crate::{Error, Result};

pub fn run(device: &str) -> Result<()> {
    match device {
        "cpu" => {
            println!(
                "device cpu: the reference backend ({} threads)",
                rayon::current_num_threads()
            );
            Ok(())
        }
        "cuda" | "cuda:0" => cuda_report(),
        "cuda-emu" => {
            #[cfg(feature = "cuda-emu")]
            {
                crate::cuda::driver::select(crate::cuda::driver::Mode::Emulated)?;
                cuda_report()
            }
            #[cfg(not(feature = "cuda-emu"))]
            Err(Error::Config(
                "--device cuda-emu needs a build with --features cuda-emu".into(),
            ))
        }
        other => Err(Error::Config(format!(
            "info --device is {other:?}; allowed: cuda (the report covers cuda:0), cuda-emu, cpu"
        ))),
    }
}

#[cfg(feature = "cuda")]
fn cuda_report() -> Result<()> {
    crate::cuda::report::print_report()
}

#[cfg(not(feature = "cuda"))]
fn cuda_report() -> Result<()> {
    println!("CUDA report: this binary was built without the `cuda` feature");
    Err(Error::Config(
        "info --device cuda: this binary has no CUDA backend (rebuild with --features cuda)".into(),
    ))
}
