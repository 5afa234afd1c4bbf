//! The loader's output when the augmentation runs on the GPU (`--augment-on gpu`): the workers
//! decode each image once, exactly as for the CPU path (same decode scale), and draw every
//! view's random parameters from the same generators (`sample_rng(seed, epoch, index, view)`
//! through `params::draw`), so one seed gives one set of parameters on both paths. What they
//! hand over is the batch's u8 source pixels packed one image after another and one
//! [`RawView`] per view, views in the order the CPU path stacks them (view 0 of every image,
//! then view 1).
//!
//! With [`SourceDecode::Gpu`] (`--decode-on gpu`) the JPEGs nvJPEG decodes as the CPU would
//! (`stream::encoded`) are not decoded here: they travel as their file bytes
//! ([`RawBatch::encoded`]), and the GPU decodes them, full size, into the sources right after
//! the host-decoded pixels, at the offsets their views name.

use super::augment::params::{self, ViewParams};
use super::augment::AugmentConfig;
use super::dataset::{Image, Routed};
use super::loader::{Job, Loader, Ordered};
use super::stream::encoded::EncodedJpeg;
use crate::{Error, Result};
use std::borrow::Cow;
use std::sync::Arc;

/// Where the workers leave a batch's JPEGs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SourceDecode {
    /// Every source decoded on the workers.
    #[default]
    Host,
    /// JPEGs the GPU decoder takes stay encoded (the rest are decoded on the workers).
    Gpu,
}

/// One view to build: where its source image lies in the batch's sources and its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RawView {
    /// Byte offset of the source image in the sources: [`RawBatch::pixels`], then the
    /// [`RawBatch::encoded`] images decoded.
    pub offset: usize,
    /// The source as decoded (h, w); RGB.
    pub size: (usize, usize),
    /// The displayed size of the full picture the crop was drawn on.
    pub full: (usize, usize),
    pub params: ViewParams,
}

/// A source the GPU decodes: its JPEG and where its RGB pixels go in the sources.
#[derive(Clone, Debug)]
pub struct EncodedSource {
    pub jpeg: EncodedJpeg,
    pub offset: usize,
}

/// One batch of undecorated sources and the parameters of all its views.
#[derive(Debug)]
pub struct RawBatch {
    pub pixels: Vec<u8>,
    /// Sources left encoded (`SourceDecode::Gpu`), at offsets from `pixels.len()` on.
    pub encoded: Vec<EncodedSource>,
    pub views: Vec<RawView>,
    pub labels: Vec<usize>,
    pub indices: Vec<usize>,
}

pub type RawBatches = Ordered<RawBatch>;

impl RawBatch {
    /// Images in the batch (each has `views.len() / images()` views).
    pub fn images(&self) -> usize {
        self.indices.len()
    }

    /// Bytes of all sources once decoded: the pixels and every encoded image's RGB.
    pub fn sources_bytes(&self) -> usize {
        self.pixels.len()
            + self
                .encoded
                .iter()
                .map(|e| e.jpeg.size.0 * e.jpeg.size.1 * 3)
                .sum::<usize>()
    }

    /// The same batch with its encoded sources decoded on the CPU (full size, appended to
    /// `pixels` at their offsets): the reference for the GPU decoder, and its fallback.
    pub fn decoded_on_host(&self) -> Result<RawBatch> {
        let mut pixels = Vec::with_capacity(self.sources_bytes());
        pixels.extend_from_slice(&self.pixels);
        for e in &self.encoded {
            pixels.extend_from_slice(&host_decode(&e.jpeg)?);
        }
        Ok(RawBatch {
            pixels,
            encoded: Vec::new(),
            views: self.views.clone(),
            labels: self.labels.clone(),
            indices: self.indices.clone(),
        })
    }

    /// The source image of view `v` (host-decoded sources only; see [`Self::decoded_on_host`]).
    pub fn source(&self, v: &RawView) -> Image<'_> {
        let (h, w) = v.size;
        Image {
            height: h,
            width: w,
            channels: 3,
            data: Cow::Borrowed(&self.pixels[v.offset..v.offset + h * w * 3]),
        }
    }

    /// Every view augmented on the CPU (`params::apply`), stacked `[views, size, size, 3]` as
    /// f32: the reference the GPU path is tested against.
    pub fn apply_cpu(&self, cfg: &AugmentConfig) -> Result<Vec<f32>> {
        if !self.encoded.is_empty() {
            return self.decoded_on_host()?.apply_cpu(cfg);
        }
        let per = cfg.size * cfg.size * 3;
        let mut out = vec![0f32; self.views.len() * per];
        for (v, o) in self.views.iter().zip(out.chunks_exact_mut(per)) {
            params::apply(cfg, &v.params, &self.source(v), v.full, o)?;
        }
        Ok(out)
    }
}

/// `jpeg` decoded on the CPU at full size, RGB: the picture nvJPEG decodes (its pixels within a
/// few levels of these).
pub fn host_decode(jpeg: &EncodedJpeg) -> Result<Vec<u8>> {
    let d = super::stream::decode::decode_bytes(&jpeg.path, &jpeg.bytes, &|h, w| (h, w))?;
    if (d.image.height, d.image.width) != jpeg.size {
        return Err(Error::Data {
            path: jpeg.path.clone(),
            msg: format!(
                "decoded {}x{}, the header said {}x{}",
                d.image.width, d.image.height, jpeg.size.1, jpeg.size.0
            ),
        });
    }
    Ok(d.image.data.into_owned())
}

/// A batch's image before the sources are laid out.
enum Source<'a> {
    Host(Image<'a>),
    Encoded(EncodedJpeg),
}

/// Batch `k` of `job`: decode (or keep encoded) and draw only.
fn build(job: &Job, cfg: &AugmentConfig, decode: SourceDecode, k: usize) -> Result<RawBatch> {
    let indices = job.indices(k);
    let mut sources = Vec::with_capacity(indices.len());
    let mut labels = Vec::with_capacity(indices.len());
    for &i in &indices {
        let routed = match decode {
            SourceDecode::Gpu => job.decode_or_encoded(i)?,
            SourceDecode::Host => Routed::Decoded(job.decode(i)?),
        };
        let (size, full, label, source) = match routed {
            Routed::Encoded(e, label) => (e.size, e.size, label, Source::Encoded(e)),
            Routed::Decoded(s) => {
                if s.image.channels != 3 {
                    return Err(Error::Config(format!(
                        "--augment-on gpu takes RGB images; dataset image {i} has {} \
                         channel(s) (use --augment-on cpu)",
                        s.image.channels
                    )));
                }
                let size = (s.image.height, s.image.width);
                (size, s.full, s.label, Source::Host(s.image))
            }
        };
        sources.push((i, source, size, full));
        labels.push(label);
    }
    // Host pixels first, then the encoded images in batch order.
    let host: usize = sources
        .iter()
        .map(|(_, s, _, _)| match s {
            Source::Host(p) => p.data.len(),
            Source::Encoded(_) => 0,
        })
        .sum();
    let (mut pixels, mut encoded) = (Vec::with_capacity(host), Vec::new());
    let mut per_view: Vec<Vec<RawView>> = vec![Vec::with_capacity(indices.len()); job.views()];
    let mut next_encoded = host;
    for (i, source, size, full) in sources {
        let offset = match source {
            Source::Host(p) => {
                pixels.extend_from_slice(&p.data);
                pixels.len() - p.data.len()
            }
            Source::Encoded(jpeg) => {
                let at = next_encoded;
                next_encoded += size.0 * size.1 * 3;
                encoded.push(EncodedSource { jpeg, offset: at });
                at
            }
        };
        for (v, views) in per_view.iter_mut().enumerate() {
            let mut rng = job.rng(i, v);
            views.push(RawView {
                offset,
                size,
                full,
                params: params::draw(cfg, full, &mut rng),
            });
        }
    }
    Ok(RawBatch {
        pixels,
        encoded,
        views: per_view.into_iter().flatten().collect(),
        labels,
        indices,
    })
}

impl Loader {
    /// The batches of `epoch` as sources and parameters (see the module header). `cfg` must be
    /// the configuration of the loader's `PretrainAugment`, whose decode needs are used.
    pub fn raw_epoch(&self, epoch: u64, cfg: &AugmentConfig, decode: SourceDecode) -> RawBatches {
        let job = self.job(epoch);
        let cfg = Arc::new(cfg.clone());
        self.spawn(Arc::new(move |k| build(&job, &cfg, decode, k)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::ArrayDataset;
    use crate::data::{Interpolation, LoaderConfig, PretrainAugment};
    use crate::Rng;

    /// Both paths on one seed: the raw batches carry the CPU path's draws, so applying them on
    /// the CPU gives the loader's views bit for bit, for either filter.
    #[test]
    fn raw_batches_carry_the_cpu_paths_parameters() {
        let mut rng = Rng::new(crate::testing::fresh_seed("raw_batches_carry"));
        let (n, side) = (6, 20 + rng.below(20));
        let px: Vec<u8> = (0..n * side * side * 3)
            .map(|_| rng.below(256) as u8)
            .collect();
        let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let classes = vec!["a".into(), "b".into(), "c".into()];
        let ds = ArrayDataset::new(
            std::path::Path::new("x"),
            (side, side, 3),
            px,
            labels,
            classes,
        )
        .unwrap();
        let ds: Arc<dyn crate::data::Dataset> = Arc::new(ds);
        for interpolation in [Interpolation::Bilinear, Interpolation::Bicubic] {
            let cfg = AugmentConfig {
                interpolation,
                color_p: 1.0,
                blur_p: 0.5,
                ..AugmentConfig::imagenet(16)
            };
            let lc = LoaderConfig {
                batch_size: 4,
                views: 2,
                seed: rng.next_u64(),
                workers: 2,
                prefetch: 2,
                drop_last: false,
                ..LoaderConfig::default()
            };
            let aug = Arc::new(PretrainAugment::new(cfg.clone()).unwrap());
            let loader = Loader::new(ds.clone(), aug, lc).unwrap();
            let mut seen = 0;
            let raw = loader.raw_epoch(3, &cfg, SourceDecode::Host);
            for (c, r) in loader.epoch(3).zip(raw) {
                let (c, r) = (c.unwrap(), r.unwrap());
                assert_eq!((&c.indices, &c.labels), (&r.indices, &r.labels));
                assert_eq!(r.pixels.len(), r.images() * side * side * 3);
                assert_eq!(r.views.len(), 2 * r.images());
                let want: Vec<f32> = c
                    .views
                    .iter()
                    .flat_map(|v| v.to_vec_f32().unwrap())
                    .collect();
                assert_eq!(r.apply_cpu(&cfg).unwrap(), want);
                seen += r.images();
            }
            assert_eq!(seen, n);
        }
    }

    #[test]
    fn one_channel_images_are_refused_with_the_flag_named() {
        let ds = ArrayDataset::new(
            std::path::Path::new("x"),
            (8, 8, 1),
            vec![7; 2 * 64],
            vec![0, 1],
            vec!["a".into(), "b".into()],
        )
        .unwrap();
        let cfg = AugmentConfig::cifar(8);
        let aug = Arc::new(PretrainAugment::new(cfg.clone()).unwrap());
        let lc = LoaderConfig {
            batch_size: 2,
            views: 2,
            workers: 0,
            ..LoaderConfig::default()
        };
        let loader = Loader::new(Arc::new(ds), aug, lc).unwrap();
        let e = loader
            .raw_epoch(0, &cfg, SourceDecode::Host)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().contains("--augment-on gpu takes RGB"), "{e}");
    }
}
