//! A cuDNN algorithm choice read from the disk cache that fails when run (a file written under
//! another driver, say) is dropped from memory and from the file: that call fails, naming the
//! cuDNN call, and the next one searches again and succeeds. The file is edited to name, for
//! every entry, an algorithm the convolution cannot run (FFT: the emulated cuDNN does not list
//! it; on a GPU it is refused for these NHWC shapes or runs, then nothing fails and the test
//! only checks the results). One device writes the file, a second reads it (each device
//! searches once and keeps its choices in memory). One test in its own process: the cache
//! folder is set before any device chooses.
#![cfg(feature = "cuda")]

#[path = "cuda_common.rs"]
mod common;
use common::gpu;

use simclr::ops::conv2d::{conv2d_forward, Conv2dSpec};
use simclr::{DType, Device, Tensor};

fn conv_on(ordinal: usize) -> simclr::Result<Vec<f64>> {
    let dev = Device::Cuda(ordinal);
    let x = Tensor::from_f64(&vec![0.5; 2 * 6 * 6 * 8], &[2, 6, 6, 8], DType::BF16)?;
    let w = Tensor::from_f64(&vec![0.25; 16 * 3 * 3 * 8], &[16, 3, 3, 8], DType::BF16)?;
    conv2d_forward(
        &x.to_device(dev)?,
        &w.to_device(dev)?,
        &Conv2dSpec::new(1, 1),
    )?
    .to_vec_f64()
}

#[test]
fn a_cached_choice_that_fails_is_forgotten_and_searched_again() {
    if gpu().is_none() {
        return;
    }
    if simclr::cuda::device_count() < 2 {
        println!("skipped: needs 2 CUDA devices (one writes the cache, the other reads it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("SIMCLR_CACHE_DIR", dir.path());
    let want = conv_on(0).unwrap();
    let file = dir.path().join("cudnn-algos.json");
    let mut cache: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let entries = cache["entries"].as_object_mut().unwrap();
    assert_eq!(entries.len(), 1, "one forward choice: {entries:?}");
    // Keys name the GPU model (the emulated devices have one name each).
    let name = |o: usize| simclr::cuda::gpu(o).unwrap().ctx.name().unwrap();
    let (key, mut choice) = entries
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    let fft =
        simclr::cuda::driver::cudnn::cudnnConvolutionFwdAlgo_t::CUDNN_CONVOLUTION_FWD_ALGO_FFT;
    choice["algo"] = (fft as u32).into();
    entries.clear();
    entries.insert(key.replacen(&name(0), &name(1), 1), choice);
    std::fs::write(&file, cache.to_string()).unwrap();
    let first = conv_on(1);
    if simclr::cuda::driver::is_emulated() {
        let e = first.expect_err("the emulated cuDNN does not run FFT");
        assert!(e.to_string().contains("cudnnConvolutionForward"), "{e}");
        let left = std::fs::read_to_string(&file).unwrap();
        assert!(
            !left.contains(&format!("\"algo\":{}", fft as u32)),
            "{left}"
        );
    }
    // Searched again (or, on a GPU that ran FFT, the same results).
    assert_eq!(conv_on(1).unwrap(), want);
    let left: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(left["entries"].as_object().unwrap().len(), 1);
}
