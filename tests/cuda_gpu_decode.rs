//! `--decode-on gpu` through the real loader: a generated folder of JPEGs and PNGs of mixed
//! sizes (grayscale and EXIF-rotated JPEGs among them) is loaded as raw batches twice with the
//! same seed, once decoded on the workers and once with the JPEGs nvJPEG takes left encoded,
//! which `GpuInput` decodes on the device into the augmentation's sources. So:
//!
//! - the two loads hold the same images, labels and drawn parameters; only baseline JPEGs
//!   without EXIF rotation travel encoded (PNGs and rotated JPEGs are decoded on the workers);
//! - the JPEGs the GPU decoded are the CPU decoder's pixels (equal on the emulated device,
//!   within nvJPEG's few levels on a GPU), and the views of the GPU-decoded batch equal the
//!   CPU's augmentation of the sources the device holds, within the tolerance of
//!   tests/cuda_gpu_input.rs;
//! - a JPEG neither nvJPEG nor the CPU can decode stops the step with an error naming it.
//!
//! Without a usable GPU the tests print `skipped: <reason>`; on a GPU, nvJPEG must load.
#![cfg(feature = "cuda")]

#[path = "cuda_common.rs"]
mod common;
use common::{assert_views_match, gpu};
#[path = "support/mixed_folder.rs"]
mod mixed_folder;
use mixed_folder::mixed_folder;

use simclr::data::gpu_input::GpuInput;
use simclr::data::stream::{open_folder, BadImages};
use simclr::data::RawBatch;
use simclr::data::{
    AugmentConfig, Interpolation, Loader, LoaderConfig, PretrainAugment, SourceDecode, Transform,
};
use simclr::testing::decode_tolerance::assert_decoded_like_cpu;
use simclr::testing::fresh_seed;
use simclr::{DType, Rng};
use std::sync::Arc;

fn loader(root: &std::path::Path, cfg: &AugmentConfig, seed: u64) -> Loader {
    let (train, _) = open_folder(root, BadImages::Fail).unwrap();
    let train: Arc<dyn simclr::data::Dataset> = Arc::new(train);
    let aug: Arc<dyn Transform> = Arc::new(PretrainAugment::new(cfg.clone()).unwrap());
    let lc = LoaderConfig {
        batch_size: 4,
        views: 2,
        seed,
        shuffle: true,
        workers: 2,
        prefetch: 2,
        drop_last: true,
        indices: None,
        shard: None,
    };
    Loader::new(train, aug, lc).unwrap()
}

fn nvjpeg_ready() {
    if let Err(why) = simclr::cuda::driver::nvjpeg::available() {
        panic!("nvJPEG cannot be used on this device: {why}");
    }
}

#[test]
fn gpu_decoded_views_match_the_cpu_views_of_the_same_batch() {
    let Some(simclr::Device::Cuda(ordinal)) = gpu() else {
        return;
    };
    nvjpeg_ready();
    let seed = fresh_seed("gpu_decoded_views_match_the_cpu_views_of_the_same_batch");
    let mut rng = Rng::new(seed);
    let root = tempfile::tempdir().unwrap();
    mixed_folder(root.path(), 6, (40, 150), &mut rng);
    let cfg = AugmentConfig {
        interpolation: Interpolation::Bilinear,
        color_p: 1.0,
        blur_p: 1.0,
        ..AugmentConfig::imagenet(24 + rng.below(16))
    };
    let l = loader(root.path(), &cfg, rng.next_u64());
    let mut input = GpuInput::new(ordinal).unwrap();
    let backend = input.decode_jpegs().unwrap();
    println!("nvJPEG backend: {backend}");
    let (mut encoded, mut images) = (0, 0);
    let host = l.raw_epoch(1, &cfg, SourceDecode::Host);
    let dev = l.raw_epoch(1, &cfg, SourceDecode::Gpu);
    for (h, g) in host.zip(dev) {
        let (h, g) = (h.unwrap(), g.unwrap());
        assert_eq!((&h.indices, &h.labels), (&g.indices, &g.labels));
        for (a, b) in h.views.iter().zip(&g.views) {
            assert_eq!((a.full, a.params), (b.full, b.params), "the draws differ");
        }
        for e in &g.encoded {
            assert!(e.jpeg.bytes.starts_with(&[0xFF, 0xD8]));
            assert_eq!(e.jpeg.size.0 * e.jpeg.size.1, {
                let v = g.views.iter().find(|v| v.offset == e.offset).unwrap();
                v.size.0 * v.size.1
            });
        }
        encoded += g.encoded.len();
        images += g.images();
        let host_decoded = g.decoded_on_host().unwrap();
        for dt in [DType::F32, DType::BF16] {
            let got = input.views(&cfg, &g, dt).unwrap();
            // The device's sources: the uploaded pixels, then nvJPEG's, which are the CPU
            // decoder's within its differences (equal on the emulated device).
            let sources = input.last_sources(&cfg, &g).unwrap();
            let n = g.pixels.len();
            assert_eq!(sources[..n], g.pixels[..], "the uploaded pixels");
            for e in &g.encoded {
                let (at, len) = (e.offset, e.jpeg.size.0 * e.jpeg.size.1 * 3);
                let what = format!("{} ({dt:?})", e.jpeg.path.display());
                let want = &host_decoded.pixels[at..at + len];
                assert_decoded_like_cpu(&sources[at..at + len], want, e.jpeg.size.1, &what);
            }
            // The views are the CPU's augmentation of those sources.
            let on_device = RawBatch {
                pixels: sources,
                encoded: Vec::new(),
                views: g.views.clone(),
                labels: g.labels.clone(),
                indices: g.indices.clone(),
            };
            let want = on_device.apply_cpu(&cfg).unwrap();
            assert_views_match(&got, &want, &g, cfg.size);
        }
    }
    // PNGs (every 3rd file) and EXIF-rotated JPEGs (every 5th) stay on the workers.
    assert!(
        encoded > 0 && encoded < images,
        "{encoded} of {images} images went to nvJPEG"
    );
}

#[test]
fn a_jpeg_no_decoder_can_read_is_named() {
    let Some(simclr::Device::Cuda(ordinal)) = gpu() else {
        return;
    };
    nvjpeg_ready();
    let root = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(fresh_seed("a_jpeg_no_decoder_can_read_is_named"));
    mixed_folder(root.path(), 2, (40, 60), &mut rng);
    // Every file a JPEG whose scan names a component the frame does not have: the headers the
    // workers check (up to the frame) pass, the scan cannot be decoded by either decoder.
    for entry in walk(&root.path().join("train")) {
        let mut bytes = std::fs::read(&entry).unwrap();
        if bytes.starts_with(&[0xFF, 0xD8]) {
            let sos = bytes.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
            // FF DA, length (2 bytes), component count, then the first component's id.
            bytes[sos + 5] = 0x77;
            std::fs::write(&entry, bytes).unwrap();
        } else {
            std::fs::remove_file(&entry).unwrap();
        }
    }
    let cfg = AugmentConfig {
        interpolation: Interpolation::Bilinear,
        ..AugmentConfig::imagenet(16)
    };
    let l = loader(root.path(), &cfg, 3);
    let mut input = GpuInput::new(ordinal).unwrap();
    input.decode_jpegs().unwrap();
    let batch = l
        .raw_epoch(0, &cfg, SourceDecode::Gpu)
        .next()
        .unwrap()
        .unwrap();
    assert!(!batch.encoded.is_empty());
    let e = input
        .views(&cfg, &batch, DType::F32)
        .unwrap_err()
        .to_string();
    let first = batch.encoded[0].jpeg.path.display().to_string();
    assert!(e.contains(&first), "{e}");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
