//! Loader throughput (images/s, loader alone) with the full two-view pretraining augmentation:
//! 224-px JPEGs decoded from an ImageFolder, and 32-px synthetic images.
//!
//! cargo run --release --example loader_throughput -- [workers] [jpegs]

use simclr::data::{
    open_dataset, AugmentConfig, Dataset, DatasetSpec, Loader, LoaderConfig, PretrainAugment,
};
use simclr::Rng;
use std::sync::Arc;
use std::time::Instant;

/// Writes `n` 224x224 JPEGs with smooth random content over 10 class folders.
fn write_jpegs(root: &std::path::Path, n: usize) -> simclr::Result<()> {
    let mut rng = Rng::new(1);
    for split in ["train", "test"] {
        for k in 0..n {
            let dir = root.join(split).join(format!("class{}", k % 10));
            std::fs::create_dir_all(&dir).map_err(|e| simclr::Error::io(&dir, e))?;
            let (fx, fy, ph) = (
                rng.range(1.0, 20.0),
                rng.range(1.0, 20.0),
                rng.range(0.0, 6.0),
            );
            let img = image::RgbImage::from_fn(224, 224, |x, y| {
                let t = ((x as f64 / 224.0 * fx + ph).sin() + (y as f64 / 224.0 * fy).cos()) * 0.25
                    + 0.5;
                let v = (t * 255.0) as u8;
                image::Rgb([v, v / 2 + (x % 64) as u8, 255 - v])
            });
            let path = dir.join(format!("{k}.jpg"));
            img.save(&path)
                .map_err(|e| simclr::Error::Config(format!("{}: {e}", path.display())))?;
            if split == "test" && k == 9 {
                break; // one test image per class suffices
            }
        }
    }
    Ok(())
}

fn measure(
    name: &str,
    ds: Arc<dyn Dataset>,
    cfg: AugmentConfig,
    workers: usize,
    bs: usize,
) -> simclr::Result<()> {
    let aug = Arc::new(PretrainAugment::new(cfg)?);
    let lcfg = LoaderConfig {
        batch_size: bs,
        views: 2,
        seed: 0,
        workers,
        prefetch: 2 * workers,
        ..Default::default()
    };
    let loader = Loader::new(ds, aug, lcfg)?;
    let mut best = 0f64;
    for epoch in 0..3 {
        let t = Instant::now();
        let mut n = 0;
        for b in loader.epoch(epoch) {
            n += b?.indices.len();
        }
        let rate = n as f64 / t.elapsed().as_secs_f64();
        println!(
            "{name}: epoch {epoch}: {n} images (x2 views) in {:.2} s = {rate:.0} images/s",
            t.elapsed().as_secs_f64()
        );
        best = best.max(rate);
    }
    println!(
        "{name}: best {best:.0} images/s ({:.0} views/s) with {workers} workers",
        2.0 * best
    );
    Ok(())
}

fn main() -> simclr::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let workers = args
        .first()
        .copied()
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let jpegs = args.get(1).copied().unwrap_or(512);
    let root = std::env::temp_dir().join(format!("simclr-loader-bench-{}", std::process::id()));
    write_jpegs(&root, jpegs)?;
    let folder = open_dataset(&DatasetSpec {
        name: "folder".into(),
        data_dir: Some(root.clone()),
        ..Default::default()
    })?;
    let r = measure(
        "folder 224px JPEG",
        folder.train,
        AugmentConfig::imagenet(224),
        workers,
        64,
    );
    let _ = std::fs::remove_dir_all(&root);
    r?;
    let syn = open_dataset(&DatasetSpec {
        synthetic_train: 20_000,
        synthetic_test: 10,
        image_size: 32,
        ..Default::default()
    })?;
    measure(
        "synthetic 32px",
        syn.train,
        AugmentConfig::cifar(32),
        workers,
        512,
    )
}
