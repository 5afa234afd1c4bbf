//! The one interface every dataset implements, and an in-memory implementation shared by the
//! fixed-size formats (synthetic, IDX, CIFAR, preloaded folders).

use super::stream::encoded::EncodedJpeg;
use crate::{Error, Result};
use std::borrow::Cow;
use std::path::Path;

/// An 8-bit image in HWC order. Borrowed from an in-memory dataset, owned when decoded lazily.
#[derive(Clone, Debug)]
pub struct Image<'a> {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub data: Cow<'a, [u8]>,
}

impl Image<'_> {
    /// Checks that the buffer fills the shape (the transforms index it unchecked-by-shape).
    pub fn check(&self) -> Result<()> {
        if self.height == 0 || self.width == 0 || self.channels == 0 {
            return Err(Error::Config(format!(
                "image has an empty shape {}x{}x{}",
                self.height, self.width, self.channels
            )));
        }
        if self.data.len() != self.height * self.width * self.channels {
            return Err(Error::Config(format!(
                "image buffer has {} bytes, shape {}x{}x{} needs {}",
                self.data.len(),
                self.height,
                self.width,
                self.channels,
                self.height * self.width * self.channels
            )));
        }
        Ok(())
    }

    pub fn into_owned(self) -> Image<'static> {
        Image {
            height: self.height,
            width: self.width,
            channels: self.channels,
            data: Cow::Owned(self.data.into_owned()),
        }
    }
}

/// An image as the loader receives it: maybe decoded at reduced scale, with the displayed size
/// of the full-resolution picture (crops are drawn on that) and the label of the image used.
pub struct Sample<'a> {
    pub image: Image<'a>,
    pub full: (usize, usize),
    pub label: usize,
}

/// What a loader asks of a decoder: for a picture of displayed size (h, w), the size (h, w)
/// it needs at least.
pub type DecodeNeed<'a> = &'a dyn Fn(usize, usize) -> (usize, usize);

/// Image `i` as the loader takes it when the GPU decodes JPEGs.
pub enum Routed<'a> {
    /// The file's bytes for nvJPEG, and the image's label.
    Encoded(EncodedJpeg, usize),
    /// Decoded on the host.
    Decoded(Sample<'a>),
}

/// A labelled image collection. Indices run over `0..len()`; every image has `channels()`
/// channels (1 for grayscale data, 3 for colour), while height and width may vary (folders).
pub trait Dataset: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The image at `i` (HWC, u8). Fails only for lazily decoded data (an unreadable file).
    fn image(&self, i: usize) -> Result<Image<'_>>;
    fn label(&self, i: usize) -> usize;
    fn num_classes(&self) -> usize {
        self.class_names().len()
    }
    fn class_names(&self) -> &[String];
    fn channels(&self) -> usize;

    /// Image `i` for the loader when the GPU decodes JPEGs: left encoded when it is a file
    /// nvJPEG decodes to the pixels the CPU would (`stream::encoded`), else as
    /// [`Dataset::sample`] gives it (the default, for datasets without files).
    fn sample_or_encoded(&self, i: usize, need: DecodeNeed) -> Result<Routed<'_>> {
        Ok(Routed::Decoded(self.sample(i, need)?))
    }

    /// Image `i` for the loader. Datasets that decode files may decode at the smallest scale
    /// covering `need` and may substitute another image for an unreadable one (the label then
    /// follows the substitute); the default is the full image and its own label.
    fn sample(&self, i: usize, need: DecodeNeed) -> Result<Sample<'_>> {
        let _ = need;
        let image = self.image(i)?;
        let full = (image.height, image.width);
        Ok(Sample {
            image,
            full,
            label: self.label(i),
        })
    }
}

/// Images of one fixed shape stored contiguously, with their labels.
pub struct ArrayDataset {
    height: usize,
    width: usize,
    channels: usize,
    pixels: Vec<u8>,
    labels: Vec<usize>,
    class_names: Vec<String>,
}

impl ArrayDataset {
    /// Validates that `pixels` holds `labels.len()` images of the shape and that every label
    /// names a class; `source` is the file blamed when not.
    pub fn new(
        source: &Path,
        (height, width, channels): (usize, usize, usize),
        pixels: Vec<u8>,
        labels: Vec<usize>,
        class_names: Vec<String>,
    ) -> Result<Self> {
        let bad = |msg: String| Error::Data {
            path: source.to_path_buf(),
            msg,
        };
        let per = height * width * channels;
        if per == 0 {
            return Err(bad(format!(
                "empty image shape {height}x{width}x{channels}"
            )));
        }
        if pixels.len() != per * labels.len() {
            return Err(bad(format!(
                "{} pixel bytes for {} labels of {height}x{width}x{channels} images (need {})",
                pixels.len(),
                labels.len(),
                per * labels.len()
            )));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l >= class_names.len())
        {
            return Err(bad(format!(
                "label {l} of item {i} is out of range (there are {} classes)",
                class_names.len()
            )));
        }
        Ok(ArrayDataset {
            height,
            width,
            channels,
            pixels,
            labels,
            class_names,
        })
    }

    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Height, width, channels of every image.
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.height, self.width, self.channels)
    }
}

impl Dataset for ArrayDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn image(&self, i: usize) -> Result<Image<'_>> {
        if i >= self.labels.len() {
            return Err(Error::Config(format!(
                "image index {i} out of range (dataset has {})",
                self.labels.len()
            )));
        }
        let per = self.height * self.width * self.channels;
        Ok(Image {
            height: self.height,
            width: self.width,
            channels: self.channels,
            data: Cow::Borrowed(&self.pixels[i * per..(i + 1) * per]),
        })
    }
    fn label(&self, i: usize) -> usize {
        self.labels[i]
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn channels(&self) -> usize {
        self.channels
    }
}

/// A class-balanced subset holding `fraction` of the dataset (as SimCLRv2's 1% and 10% label
/// subsets): the quota is spread over the classes as evenly as their sizes allow, and which
/// images of a class are taken is decided by `seed`. Sorted ascending.
pub fn class_balanced_subset(ds: &dyn Dataset, fraction: f64, seed: u64) -> Result<Vec<usize>> {
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(Error::Config(format!(
            "label fraction must be in (0, 1], got {fraction}"
        )));
    }
    let k = ds.num_classes();
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); k];
    for i in 0..ds.len() {
        by_class[ds.label(i)].push(i);
    }
    let mut rng = crate::Rng::derive(seed, 0x5375_6273);
    for c in &mut by_class {
        rng.shuffle(c);
    }
    let mut quota = ((fraction * ds.len() as f64).round() as usize).max(1);
    let mut take = vec![0usize; k];
    // Round-robin over classes that still have images, so counts differ by at most one.
    while quota > 0 {
        let mut progressed = false;
        for c in 0..k {
            if quota > 0 && take[c] < by_class[c].len() {
                take[c] += 1;
                quota -= 1;
                progressed = true;
            }
        }
        if !progressed {
            break;
        }
    }
    let mut out: Vec<usize> = by_class
        .iter()
        .zip(&take)
        .flat_map(|(c, &t)| c[..t].iter().copied())
        .collect();
    out.sort_unstable();
    Ok(out)
}
