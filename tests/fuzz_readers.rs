//! Issue 14, item 15: the readers of untrusted files (safetensors checkpoints, IDX, CIFAR
//! records, image-folder images, TOML configs) on random mutations of valid files: an error is
//! fine, a panic, a hang or an allocation abort is not.
//!
//! Each target starts from the seed files in `tests/fuzz_corpus/<target>/` (plus seeds built
//! here) and runs for `SIMCLR_FUZZ_SECS` seconds (default 2, what CI runs):
//!
//! ```sh
//! SIMCLR_FUZZ_SECS=600 SIMCLR_FUZZ_SEED=1 nice cargo test --release --test fuzz_readers -- --nocapture --test-threads 1
//! ```
//!
//! A failing input is written to `target/fuzz-failures/<target>-<seed>.bin` and named in the
//! failure; copy it into the corpus folder once fixed so it is replayed every run.

use simclr::{Rng, Tensor};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest one input may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(20);

fn secs() -> f64 {
    std::env::var("SIMCLR_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Interesting values for overwritten integers: boundaries of every width.
const EDGES: [u64; 10] = [
    0,
    1,
    0x7f,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
    1 << 40,
];

/// One random mutation of `v`: bit flips, byte overwrites, integer edges, insertions,
/// deletions, truncation, duplication.
fn mutate(v: &mut Vec<u8>, rng: &mut Rng) {
    let n = 1 + rng.below(4);
    for _ in 0..n {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = [0u8, 0xff, 0x7f, 0x80, b'"', b'{', b'9', b'-'][rng.below(8)];
            }
            2 if len >= 8 => {
                let i = rng.below(len - 7);
                let e = EDGES[rng.below(EDGES.len())];
                let w = [1usize, 2, 4, 8][rng.below(4)];
                let bytes = if rng.below(2) == 0 {
                    e.to_le_bytes()
                } else {
                    e.to_be_bytes()
                };
                v[i..i + w].copy_from_slice(&bytes[..w]);
            }
            3 => {
                let i = rng.below(len + 1);
                let k = 1 + rng.below(16);
                let ins: Vec<u8> = (0..k).map(|_| rng.below(256) as u8).collect();
                v.splice(i..i, ins);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let k = (1 + rng.below(64)).min(len - i);
                v.drain(i..i + k);
            }
            5 if len > 0 => v.truncate(rng.below(len)),
            6 if len > 0 && len < 1 << 20 => {
                let i = rng.below(len);
                let k = (1 + rng.below(256)).min(len - i);
                let chunk = v[i..i + k].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, chunk);
            }
            _ if len > 0 => {
                // Digits: numbers in text formats (TOML, safetensors' JSON header).
                let i = rng.below(len);
                v[i] = b'0' + rng.below(10) as u8;
            }
            _ => v.push(rng.below(256) as u8),
        }
    }
}

/// Runs `read` on mutations of `seeds` for the configured time; fails on a panic or hang.
fn fuzz(target: &str, mut seeds: Vec<Vec<u8>>, read: impl Fn(&[u8], &Path)) {
    seeds.extend(corpus(target));
    assert!(!seeds.is_empty());
    let seed = std::env::var("SIMCLR_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0u64);
    let mut rng = Rng::new(seed ^ target.len() as u64);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-{target}"));
    std::fs::create_dir_all(&dir).unwrap();
    let failures = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    // Watchdog: an input running past HANG is saved and the process stopped.
    let current: Arc<(AtomicU64, Mutex<Vec<u8>>, AtomicBool)> = Arc::default();
    let clock = Instant::now();
    let watchdog = std::thread::spawn({
        let (current, failures, target) = (current.clone(), failures.clone(), target.to_string());
        move || {
            while !current.2.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(200));
                let started = current.0.load(Ordering::SeqCst);
                if started > 0
                    && clock.elapsed().as_millis() as u64 > started + HANG.as_millis() as u64
                {
                    let input = current.1.lock().map(|v| v.clone()).unwrap_or_default();
                    let saved = save(&failures, &target, "hang", &input);
                    eprintln!("fuzz {target}: {} ran over {HANG:?}", saved.display());
                    std::process::exit(101);
                }
            }
        }
    });
    let budget = Duration::from_secs_f64(secs());
    let mut runs = 0u64;
    // Every seed as is, then mutations until the time is up.
    while (runs as usize) < seeds.len() || clock.elapsed() < budget {
        let mut input = seeds[runs as usize % seeds.len()].clone();
        if runs as usize >= seeds.len() {
            mutate(&mut input, &mut rng);
        }
        let path = dir.join("input");
        std::fs::write(&path, &input).unwrap();
        *current.1.lock().unwrap() = input.clone();
        current
            .0
            .store(clock.elapsed().as_millis() as u64 + 1, Ordering::SeqCst);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&input, &path)));
        current.0.store(0, Ordering::SeqCst);
        if r.is_err() {
            let saved = save(&failures, target, "panic", &input);
            panic!(
                "fuzz {target}: panic on {} ({} bytes)",
                saved.display(),
                input.len()
            );
        }
        runs += 1;
    }
    current.2.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
    eprintln!(
        "fuzz {target}: {runs} inputs in {:.1} s, no panic, hang or abort",
        clock.elapsed().as_secs_f64()
    );
}

fn save(dir: &Path, target: &str, what: &str, input: &[u8]) -> PathBuf {
    let _ = std::fs::create_dir_all(dir);
    let p = dir.join(format!("{target}-{what}-{}.bin", input.len()));
    let _ = std::fs::write(&p, input);
    p
}

#[test]
fn safetensors_checkpoints() {
    use simclr::params::ParamStore;
    use simclr::train::model::{self, ModelMeta, SimClrNet};
    let meta = ModelMeta {
        stage: "pretrain".into(),
        model: "r18_0.25x_sk0".into(),
        image_size: 8,
        in_channels: 1,
        proj_layers: 2,
        proj_dim: 4,
        proj_layer: 0,
        num_classes: 2,
        stem_pool_padding: simclr::nn::StemPoolPadding::Symmetric,
    };
    let mut store = ParamStore::new(simclr::DType::F32, 0);
    SimClrNet::new(&mut store, meta.clone()).unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-seed-st");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("seed.safetensors");
    model::save(&store, &meta, &p).unwrap();
    let small = simclr::checkpoint::serialize(
        &[("w".into(), Tensor::from_vec(vec![1f32, 2.0], &[2]).unwrap())],
        None,
    )
    .unwrap();
    fuzz(
        "safetensors",
        vec![std::fs::read(&p).unwrap(), small],
        |bytes, path| {
            let _ = simclr::checkpoint::read_weights(bytes, path);
            let _ = simclr::checkpoint::read_tensors(bytes, path);
            let _ = simclr::checkpoint::read_metadata(path);
            let _ = simclr::train::ckpt_check::header_shapes(path);
            if let Ok(m) = ModelMeta::read(path) {
                // Untrusted metadata: only the shape check, never a build of the network.
                let _ = simclr::train::ckpt_check::check(path, &m, |_| true, true);
            }
        },
    );
}

#[test]
fn idx_files() {
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3];
    images.extend(0..18u8);
    let labels = vec![0, 0, 8, 1, 0, 0, 0, 2, 4, 7];
    let mut gz = Vec::new();
    {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
        e.write_all(&images).unwrap();
        e.finish().unwrap();
    }
    fuzz("idx", vec![images, labels, gz], |bytes, path| {
        let _ = simclr::data::idx::parse_idx(bytes, path);
        if let Ok(b) = simclr::data::idx::read_maybe_gz(path) {
            let _ = simclr::data::idx::parse_idx(&b, path);
        }
    });
}

#[test]
fn cifar_records() {
    let rec = |labels: &[u8]| {
        let mut v = labels.to_vec();
        v.extend((0..3072).map(|i| (i % 251) as u8));
        v
    };
    let ten = [rec(&[3]), rec(&[9])].concat();
    let hundred = rec(&[4, 77]);
    fuzz("cifar", vec![ten, hundred], |bytes, path| {
        let _ = simclr::data::cifar::parse_records(bytes, path, 1, 10, 0);
        let _ = simclr::data::cifar::parse_records(bytes, path, 2, 100, 20);
    });
}

#[test]
fn folder_images() {
    let img = image::RgbImage::from_fn(6, 5, |x, y| image::Rgb([x as u8 * 40, y as u8 * 50, 7]));
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let mut jpg = std::io::Cursor::new(Vec::new());
    img.write_to(&mut jpg, image::ImageFormat::Jpeg).unwrap();
    fuzz(
        "folder",
        vec![png.into_inner(), jpg.into_inner()],
        |bytes, path| {
            let _ = bytes;
            let _ = simclr::data::folder::decode_file(path);
            // The streaming decoder, at full and at reduced JPEG scale.
            let _ = simclr::data::stream::decode::decode_path(path, &|h, w| (h, w));
            let _ = simclr::data::stream::decode::decode_path(path, &|h, w| (h / 8, w / 8));
        },
    );
}

#[test]
fn toml_configs() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = vec![std::fs::read(repo.join("configs/fashion-mnist-1pct.toml")).unwrap()];
    seeds.push(
        toml::to_string(&simclr::train::Config::default())
            .unwrap()
            .into_bytes(),
    );
    fuzz("toml", seeds, |_, path| {
        if let Ok(c) = simclr::train::Config::from_file(path) {
            let _ = c.validate();
        }
    });
}
