//! The real CUDA libraries PyTorch 2.11 requires (cuBLAS 13.1, cuDNN 9.19, NCCL 2.28, from
//! their PyPI wheels), used as a GPU machine will use them, on a machine without a GPU:
//!
//! - discovery finds them in a site-packages layout and reads each one's own version;
//! - the cuDNN descriptor cases (tests/support/cudnn_descriptor_cases.rs) give the outcomes
//!   the table says (which the emulated cuDNN is held to);
//! - every convolution of every model the trainer offers (r18..r200, 1x..4x, sk0/sk1, at 224
//!   and 32 px, batches 1, 256 and 1024, bf16 and f32, the stem as the GPU runs it) gets its
//!   descriptors from the real cuDNN through the code a GPU run uses, and cuDNN's output shape
//!   is ours; the ones over cuDNN's 2^31-element limit are refused by our check, by name.
//!
//! The libraries: `$SIMCLR_TEST_REAL_CUDA_SITE`, the folder scripts/fetch-real-cuda-libs.sh
//! prints. Without it the test prints `skipped:`, and fails when `SIMCLR_REQUIRE_REAL_LIBS=1`
//! (as CI sets). One test in its own process: discovery runs once, before anything else reads
//! `$SIMCLR_CUDA_LIBS`.
#![cfg(feature = "cuda")]

#[path = "support/cudnn_descriptor_cases.rs"]
mod cudnn_descriptor_cases;
#[path = "support/real_site.rs"]
mod real_site;

use real_site::real_cuda_site;
use simclr::cuda::driver::{self, libraries, loaded};
use simclr::nn::{ResNet, ResNetConfig, STEM_CHANNELS_ON_GPU};
use simclr::ops::conv2d::{cuda_limits, cudnn_describe, Geometry};
use simclr::params::ParamStore;
use simclr::DType;
use std::collections::HashSet;
use std::path::PathBuf;

#[test]
fn pytorchs_cuda_libraries_without_a_gpu() {
    if driver::mode() != driver::Mode::Real {
        println!("skipped: the real libraries (this process runs the emulated device)");
        return;
    }
    let Some(site) = real_cuda_site() else { return };
    let folders: Vec<PathBuf> = ["cu13", "cudnn", "nccl"]
        .iter()
        .map(|f| site.join("nvidia").join(f).join("lib"))
        .collect();
    for f in &folders {
        assert!(f.is_dir(), "{} is not a folder", f.display());
    }
    // Before any discovery in this process (the only test of this executable).
    std::env::set_var("SIMCLR_CUDA_LIBS", std::env::join_paths(&folders).unwrap());

    discovery_reads_each_version(&folders);
    cudnn_descriptor_cases::check_all();
    every_model_convolution_is_described_by_cudnn();
}

fn discovery_reads_each_version(folders: &[PathBuf]) {
    let d = libraries::preload();
    for (name, file, folder, version) in [
        ("cuBLAS", "libcublas.so.13", &folders[0], "13.1."),
        ("cuDNN", "libcudnn.so.9", &folders[1], "9.19."),
        ("NCCL", "libnccl.so.2", &folders[2], "2.28."),
    ] {
        let f = d
            .library(name)
            .unwrap_or_else(|| panic!("{name} is not a library"));
        assert_eq!(
            f.path.as_deref(),
            Some(folder.join(file).as_path()),
            "{name}: tried {:?}, errors {:?}",
            f.tried,
            f.errors
        );
        let l = loaded::libraries();
        let l = l.iter().find(|l| l.name == name).unwrap();
        let v = l.version.as_deref().unwrap_or("none");
        assert!(v.starts_with(version), "{name} reports version {v}");
        println!("{name} {v} from {}", folder.display());
    }
}

/// Every model name the trainer parses: depths, widths and SK.
fn model_names() -> Vec<String> {
    let mut names = Vec::new();
    for depth in [18, 34, 50, 101, 152, 200] {
        for width in 1..=4 {
            for sk in 0..=1 {
                names.push(format!("r{depth}_{width}x_sk{sk}"));
            }
        }
    }
    names
}

/// The distinct convolutions of every model at batches 1, 256 and 1024, as the GPU runs them.
fn every_convolution() -> HashSet<Geometry> {
    let mut all = HashSet::new();
    for name in model_names() {
        for size in [224, 32] {
            let cfg = ResNetConfig::parse(&name).unwrap().for_image_size(size);
            let mut store = ParamStore::meta();
            let net = ResNet::new(&mut store, "encoder", &cfg).unwrap();
            let summary = net.describe(size).unwrap();
            let convs: Vec<&Geometry> = summary.convolutions().collect();
            assert!(
                convs.len() > 15,
                "{name} at {size} px: {} convolutions",
                convs.len()
            );
            for g in convs {
                for n in [1, 256, 1024] {
                    all.insert(on_gpu(g, n));
                }
            }
        }
    }
    all
}

/// `g` at batch `n`, with the RGB stem padded to 8 channels as on a GPU.
fn on_gpu(g: &Geometry, n: usize) -> Geometry {
    let mut g = *g;
    g.n = n;
    if g.cin == 3 {
        (g.cin, g.cin_g) = (STEM_CHANNELS_ON_GPU, STEM_CHANNELS_ON_GPU);
    }
    g
}

fn every_model_convolution_is_described_by_cudnn() {
    let all = every_convolution();
    let (mut described, mut over_limit) = (0, 0);
    for g in &all {
        for dt in [DType::BF16, DType::F32] {
            let r = cudnn_describe(g, dt);
            match cuda_limits::too_large(g) {
                None => {
                    r.unwrap_or_else(|e| panic!("{g:?} in {}: {e}", dt.name()));
                    described += 1;
                }
                Some(why) => {
                    let e = r
                        .expect_err("over cuDNN's limit, yet described")
                        .to_string();
                    assert!(e.contains(&why), "{e}");
                    over_limit += 1;
                }
            }
        }
    }
    // A shape of ours that is not cuDNN's is caught, naming both.
    let mut wrong = *all.iter().next().unwrap();
    wrong.ho += 1;
    let e = cudnn_describe(&wrong, DType::BF16)
        .expect_err("an output height one too large was accepted")
        .to_string();
    assert!(e.contains("cuDNN's output (n, c, h, w)"), "{e}");
    println!(
        "{} distinct convolutions: {described} descriptor sets built by cuDNN with our output \
         shape, {over_limit} refused over the 2^31-element limit",
        all.len()
    );
    assert!(described > 500, "only {described} described");
    assert!(
        over_limit > 0,
        "no convolution reached the limit: its refusal went unchecked"
    );
}
