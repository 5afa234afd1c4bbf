//! MNIST: the same IDX files as Fashion-MNIST (`train-*` and `t10k-*`, gzipped or not), with
//! the digits "0".."9" as class names. There is no default location: pass `--data-dir`.

use super::dataset::ArrayDataset;
use super::idx::load_idx_split;
use crate::{Error, Result};
use std::path::Path;

pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Train and test splits of MNIST from `dir`.
pub fn load_mnist(dir: Option<&Path>) -> Result<(ArrayDataset, ArrayDataset)> {
    let dir = dir.ok_or_else(|| {
        Error::Config("dataset 'mnist' needs a data directory (--data-dir)".into())
    })?;
    Ok((
        load_idx_split(dir, "train", &MNIST_CLASSES)?,
        load_idx_split(dir, "t10k", &MNIST_CLASSES)?,
    ))
}
