//! A generated ImageNet-layout folder with what real folders contain: JPEGs and PNGs of mixed
//! sizes, grayscale and EXIF-rotated JPEGs (included by path by the tests that stream one).

use simclr::data::stream::synth::{write_split, SynthFolder};
use simclr::Rng;
use std::path::Path;

/// Writes `root/train` and `root/val`: 2 classes of `per_class` files each, sides in `sides`.
pub fn mixed_folder(root: &Path, per_class: usize, sides: (u32, u32), rng: &mut Rng) {
    let spec = SynthFolder {
        classes: 2,
        per_class,
        sides,
        png_every: 3,
        gray_every: 4,
        exif_every: 5,
        quality: 88,
    };
    write_folder(root, &spec, rng);
}

/// Writes `root/train` and `root/val` as `spec` says.
pub fn write_folder(root: &Path, spec: &SynthFolder, rng: &mut Rng) {
    for split in ["train", "val"] {
        write_split(root, split, spec, rng).unwrap();
    }
}
