//! IDX files (MNIST, Fashion-MNIST), gzipped or not: magic `00 00 08 ndims`, then `ndims`
//! big-endian u32 dimensions, then the u8 payload.

use super::dataset::ArrayDataset;
use crate::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where Debian's `dataset-fashion-mnist` package installs the files.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Reads a whole file, gunzipping it when it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::Data {
                path: path.to_path_buf(),
                msg: format!("corrupt gzip stream: {e}"),
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses an IDX u8 array: returns its dimensions and payload.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let bad = |msg: String| Error::Data {
        path: path.to_path_buf(),
        msg,
    };
    if bytes.len() < 4 {
        return Err(bad(format!(
            "truncated: {} bytes, shorter than the 4-byte IDX header",
            bytes.len()
        )));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(format!(
            "wrong magic number {:02x} {:02x} {:02x} {:02x} (an IDX file starts with 00 00)",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "element type 0x{:02x} is not unsigned byte (0x08)",
            bytes[2]
        )));
    }
    let ndims = bytes[3] as usize;
    let head = 4 + 4 * ndims;
    if ndims == 0 || bytes.len() < head {
        return Err(bad(format!(
            "truncated header: {ndims} dimensions need {head} bytes, file has {}",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|d| {
            let o = 4 + 4 * d;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let need = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    let have = bytes.len() - head;
    if have != need {
        let what = if have < need { "truncated" } else { "too long" };
        return Err(bad(format!(
            "{what}: dimensions {dims:?} need {need} data bytes, file has {have}"
        )));
    }
    Ok((dims, bytes[head..].to_vec()))
}

/// Finds `stem` or `stem.gz` in `dir`.
fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [stem.to_string(), format!("{stem}.gz")] {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::Data {
        path: dir.join(stem),
        msg: format!("missing (looked for {stem} and {stem}.gz)"),
    })
}

/// One split (`prefix` is `train` or `t10k`) of an IDX image/label pair.
pub fn load_idx_split(dir: &Path, prefix: &str, class_names: &[&str]) -> Result<ArrayDataset> {
    let ip = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let (idims, pixels) = parse_idx(&read_maybe_gz(&ip)?, &ip)?;
    let lp = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let (ldims, labels) = parse_idx(&read_maybe_gz(&lp)?, &lp)?;
    if idims.len() != 3 {
        return Err(Error::Data {
            path: ip,
            msg: format!("image file has dimensions {idims:?}, expected [n, rows, cols]"),
        });
    }
    if ldims.len() != 1 || ldims[0] != idims[0] {
        return Err(Error::Data {
            path: lp,
            msg: format!(
                "label file has dimensions {ldims:?}, expected [{}] to match {}",
                idims[0],
                ip.display()
            ),
        });
    }
    let names = class_names.iter().map(|s| s.to_string()).collect();
    let labels = labels.into_iter().map(usize::from).collect();
    ArrayDataset::new(&lp, (idims[1], idims[2], 1), pixels, labels, names)
}

/// Fashion-MNIST from `dir`, or from Debian's install location when `dir` is `None`.
pub fn load_fashion_mnist(dir: Option<&Path>) -> Result<(ArrayDataset, ArrayDataset)> {
    let dir = dir.unwrap_or(Path::new(DEBIAN_FASHION_MNIST));
    let train = load_idx_split(dir, "train", &FASHION_MNIST_CLASSES)?;
    let test = load_idx_split(dir, "t10k", &FASHION_MNIST_CLASSES)?;
    Ok((train, test))
}
