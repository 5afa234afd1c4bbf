//! Streaming image datasets for ImageNet-sized data: only paths and labels are held
//! ([`listing`]), every image is decoded when the loader's workers ask for it ([`decode`]), at
//! the smallest JPEG scale its random crops need, so memory does not grow with the dataset.
//!
//! Two layouts: `folder` (`<root>/train/<class>/*.JPEG` and `<root>/val/<class>/...` or
//! `test/`, as ImageNet unpacks) and `list` (`<root>/train.txt` and `<root>/val.txt` or
//! `test.txt`, lines `<path> <label>`, paths relative to the list). An unreadable file either
//! stops the run with an error naming it ([`BadImages::Fail`]) or is reported once and replaced
//! by the next readable image in index order ([`BadImages::Skip`]), so batches keep their size.

pub mod decode;
pub mod encoded;
pub mod jpeg_colour;
pub mod listing;
pub mod orient;
pub mod shard;
pub mod synth;
pub mod synth_jpeg;

use super::dataset::{Dataset, DecodeNeed, Image, Routed, Sample};
use crate::{Error, Result};
use encoded::EncodedJpeg;
use listing::Listing;
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Consecutive unreadable images tolerated before `skip` gives up on a sample.
const MAX_SKIPS: usize = 64;

/// What to do with a file that cannot be decoded (`--bad-images`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BadImages {
    /// Stop with an error naming the file.
    #[default]
    Fail,
    /// Warn once naming the file and use the next readable image instead.
    Skip,
}

pub const BAD_IMAGES_VALUES: [&str; 2] = ["fail", "skip"];

impl std::str::FromStr for BadImages {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fail" => Ok(BadImages::Fail),
            "skip" => Ok(BadImages::Skip),
            other => Err(Error::Config(format!(
                "--bad-images '{other}' is not one of: {}",
                BAD_IMAGES_VALUES.join(", ")
            ))),
        }
    }
}

/// Images listed by path, decoded on every access.
pub struct StreamDataset {
    listing: Listing,
    bad: BadImages,
    /// Files already reported as skipped (grows only with the number of bad files).
    warned: Mutex<HashSet<usize>>,
    /// Files read so far (each access reads its file once).
    reads: AtomicUsize,
}

impl StreamDataset {
    pub fn new(listing: Listing, bad: BadImages) -> Self {
        StreamDataset {
            listing,
            bad,
            warned: Mutex::new(HashSet::new()),
            reads: AtomicUsize::new(0),
        }
    }

    /// How many files the dataset has read.
    pub fn files_read(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }

    fn read(&self, i: usize) -> Result<Vec<u8>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let path = self.listing.path(i);
        std::fs::read(&path).map_err(|e| Error::io(&path, e))
    }

    fn check_index(&self, i: usize) -> Result<()> {
        let n = self.listing.len();
        if i >= n {
            return Err(Error::Config(format!(
                "image index {i} out of range (dataset has {n})"
            )));
        }
        Ok(())
    }

    /// [`Dataset::sample`], given image `i`'s file when it has already been read.
    fn sample_read(
        &self,
        i: usize,
        need: DecodeNeed,
        mut first: Option<Result<Vec<u8>>>,
    ) -> Result<Sample<'_>> {
        self.check_index(i)?;
        let n = self.listing.len();
        let mut last = None;
        for k in 0..MAX_SKIPS.min(n) {
            let j = (i + k) % n;
            let bytes = first.take().unwrap_or_else(|| self.read(j));
            match bytes.and_then(|b| decode::decode_bytes(&self.listing.path(j), &b, need)) {
                Ok(d) => {
                    return Ok(Sample {
                        image: d.image,
                        full: d.full,
                        label: self.listing.label(j),
                    })
                }
                Err(e) if self.bad == BadImages::Skip => {
                    self.warn_once(j, &e);
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        let last = last.map(|e| e.to_string()).unwrap_or_default();
        Err(Error::Data {
            path: self.listing.path(i),
            msg: format!(
                "this and the next {} images are all unreadable (last: {last})",
                MAX_SKIPS.min(n) - 1
            ),
        })
    }

    pub fn listing(&self) -> &Listing {
        &self.listing
    }

    fn warn_once(&self, i: usize, e: &Error) {
        let mut w = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if w.insert(i) {
            eprintln!("warning: skipping unreadable image (--bad-images skip): {e}");
        }
    }
}

impl Dataset for StreamDataset {
    fn len(&self) -> usize {
        self.listing.len()
    }
    fn image(&self, i: usize) -> Result<Image<'_>> {
        Ok(self.sample(i, &|h, w| (h, w))?.image)
    }
    fn label(&self, i: usize) -> usize {
        self.listing.label(i)
    }
    fn class_names(&self) -> &[String] {
        &self.listing.class_names
    }
    fn channels(&self) -> usize {
        3
    }
    fn sample_or_encoded(&self, i: usize, need: DecodeNeed) -> Result<Routed<'_>> {
        self.check_index(i)?;
        // The file is read once: its bytes go to the GPU, or to the host decoder (where an
        // unreadable one meets --bad-images).
        let bytes = self.read(i);
        let size = bytes
            .as_deref()
            .ok()
            .and_then(|b| encoded::gpu_decodable(b).ok());
        match (bytes, size) {
            (Ok(bytes), Some(size)) => {
                let path = self.listing.path(i);
                let jpeg = EncodedJpeg {
                    bytes: bytes.into(),
                    size,
                    path,
                };
                Ok(Routed::Encoded(jpeg, self.listing.label(i)))
            }
            (bytes, _) => Ok(Routed::Decoded(self.sample_read(i, need, Some(bytes))?)),
        }
    }

    fn sample(&self, i: usize, need: DecodeNeed) -> Result<Sample<'_>> {
        self.sample_read(i, need, None)
    }
}

/// `root/<name>` for the first name that exists.
fn first_existing(root: &Path, names: &[&str], what: &str) -> Result<std::path::PathBuf> {
    names
        .iter()
        .map(|n| root.join(n))
        .find(|p| p.exists())
        .ok_or_else(|| Error::Data {
            path: root.to_path_buf(),
            msg: format!("no {what} (looked for {})", names.join(", ")),
        })
}

fn same_classes(test: &Listing, train: &Listing, test_path: &Path) -> Result<()> {
    if test.class_names != train.class_names {
        return Err(Error::Data {
            path: test_path.to_path_buf(),
            msg: format!(
                "class folders {:?} differ from train/'s {:?}",
                test.class_names, train.class_names
            ),
        });
    }
    Ok(())
}

/// `root/train/<class>/...` and `root/val/...` (or `test/`), which must list the same classes.
pub fn open_folder(root: &Path, bad: BadImages) -> Result<(StreamDataset, StreamDataset)> {
    let train = Listing::folder(&root.join("train"))?;
    let test_dir = first_existing(root, &["test", "val"], "test/ or val/ sub-folder")?;
    let test = Listing::folder(&test_dir)?;
    same_classes(&test, &train, &test_dir)?;
    Ok((
        StreamDataset::new(train, bad),
        StreamDataset::new(test, bad),
    ))
}

/// `root/train.txt` and `root/val.txt` (or `test.txt`); the class count is the larger label
/// + 1 of the two lists.
pub fn open_list(root: &Path, bad: BadImages) -> Result<(StreamDataset, StreamDataset)> {
    let train_file = first_existing(root, &["train.txt"], "training list")?;
    let test_file = first_existing(root, &["test.txt", "val.txt"], "test list")?;
    let (mut train, mut test) = (
        Listing::list(&train_file, None)?,
        Listing::list(&test_file, None)?,
    );
    let k = train.class_names.len().max(test.class_names.len());
    for l in [&mut train, &mut test] {
        l.class_names = (0..k).map(|c| c.to_string()).collect();
    }
    Ok((
        StreamDataset::new(train, bad),
        StreamDataset::new(test, bad),
    ))
}
