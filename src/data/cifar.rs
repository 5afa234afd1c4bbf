//! The binary versions of CIFAR-10 and CIFAR-100: fixed-size records of label byte(s) followed
//! by a 32x32 image stored as three planes (R, G, B), which we turn into HWC.

use super::dataset::ArrayDataset;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

const SIDE: usize = 32;
const PIXELS: usize = SIDE * SIDE * 3;

pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Fine label names of CIFAR-100 in label order (used when `fine_label_names.txt` is absent).
pub const CIFAR100_CLASSES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

/// Parsed records of one file: images (HWC), the label used (last label byte: CIFAR-10's only
/// one, CIFAR-100's fine one) and, for CIFAR-100, the coarse labels.
pub struct Records {
    pub pixels: Vec<u8>,
    pub labels: Vec<usize>,
    pub coarse: Vec<usize>,
}

/// Parses records with `label_bytes` leading label bytes; `classes` bounds the last label and
/// `coarse_classes` the first when there are two.
pub fn parse_records(
    bytes: &[u8],
    path: &Path,
    label_bytes: usize,
    classes: usize,
    coarse_classes: usize,
) -> Result<Records> {
    let bad = |msg: String| Error::Data {
        path: path.to_path_buf(),
        msg,
    };
    let rec = label_bytes + PIXELS;
    if bytes.is_empty() {
        return Err(bad("empty file".into()));
    }
    if bytes.len() % rec != 0 {
        return Err(bad(format!(
            "truncated or corrupt: {} bytes is not a whole number of {rec}-byte records",
            bytes.len()
        )));
    }
    let n = bytes.len() / rec;
    let mut out = Records {
        pixels: vec![0u8; n * PIXELS],
        labels: Vec::with_capacity(n),
        coarse: Vec::new(),
    };
    for (i, r) in bytes.chunks_exact(rec).enumerate() {
        let label = r[label_bytes - 1] as usize;
        if label >= classes {
            return Err(bad(format!(
                "record {i}: label {label} out of range (there are {classes} classes)"
            )));
        }
        if label_bytes == 2 {
            let c = r[0] as usize;
            if c >= coarse_classes {
                return Err(bad(format!(
                    "record {i}: coarse label {c} out of range (there are {coarse_classes})"
                )));
            }
            out.coarse.push(c);
        }
        out.labels.push(label);
        let planes = &r[label_bytes..];
        let img = &mut out.pixels[i * PIXELS..(i + 1) * PIXELS];
        for p in 0..SIDE * SIDE {
            for ch in 0..3 {
                img[p * 3 + ch] = planes[ch * SIDE * SIDE + p];
            }
        }
    }
    Ok(out)
}

/// The directory holding the files: `dir` itself or the sub-folder the archive unpacks to.
fn resolve(dir: &Path, sub: &str, probe: &str) -> PathBuf {
    if !dir.join(probe).is_file() && dir.join(sub).join(probe).is_file() {
        dir.join(sub)
    } else {
        dir.to_path_buf()
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Class names from a text file (one per line) when present and of the right count.
fn names_from(path: &Path, builtin: &[&str]) -> Vec<String> {
    let from_file: Option<Vec<String>> = std::fs::read_to_string(path).ok().map(|s| {
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    });
    match from_file {
        Some(v) if v.len() == builtin.len() => v,
        _ => builtin.iter().map(|s| s.to_string()).collect(),
    }
}

fn load_files(
    files: &[PathBuf],
    label_bytes: usize,
    names: Vec<String>,
    coarse_classes: usize,
) -> Result<ArrayDataset> {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for f in files {
        let r = parse_records(&read(f)?, f, label_bytes, names.len(), coarse_classes)?;
        pixels.extend_from_slice(&r.pixels);
        labels.extend_from_slice(&r.labels);
    }
    ArrayDataset::new(&files[0], (SIDE, SIDE, 3), pixels, labels, names)
}

/// CIFAR-10: `data_batch_1..5.bin` and `test_batch.bin`, in `dir` or `dir/cifar-10-batches-bin`.
pub fn load_cifar10(dir: &Path) -> Result<(ArrayDataset, ArrayDataset)> {
    let d = resolve(dir, "cifar-10-batches-bin", "test_batch.bin");
    let names = names_from(&d.join("batches.meta.txt"), &CIFAR10_CLASSES);
    let train: Vec<PathBuf> = (1..=5)
        .map(|i| d.join(format!("data_batch_{i}.bin")))
        .collect();
    let test = [d.join("test_batch.bin")];
    Ok((
        load_files(&train, 1, names.clone(), 0)?,
        load_files(&test, 1, names, 0)?,
    ))
}

/// CIFAR-100 (fine labels): `train.bin` and `test.bin`, in `dir` or `dir/cifar-100-binary`.
pub fn load_cifar100(dir: &Path) -> Result<(ArrayDataset, ArrayDataset)> {
    let d = resolve(dir, "cifar-100-binary", "test.bin");
    let names = names_from(&d.join("fine_label_names.txt"), &CIFAR100_CLASSES);
    Ok((
        load_files(&[d.join("train.bin")], 2, names.clone(), 20)?,
        load_files(&[d.join("test.bin")], 2, names, 20)?,
    ))
}
