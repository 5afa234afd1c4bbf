//! Image transforms: SimCLR's pretraining augmentation, the fine-tuning one (crop + flip) and
//! the evaluation one (centre crop + resize). All read u8 HWC and write f32 HWC in [0, 1]
//! (or normalised). Randomness comes only from the `Rng` passed in, which the loader derives
//! from (seed, epoch, index, view) via [`sample_rng`].

pub mod blur;
pub mod color;
pub mod crop;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
pub mod params;

pub use crop::{CropBox, Interpolation};

use crate::data::dataset::Image;
use crate::{Error, Result, Rng};

/// The generator for one view of one image, independent of thread scheduling.
pub fn sample_rng(seed: u64, epoch: u64, index: usize, view: usize) -> Rng {
    let mut key = Rng::derive(seed, 0x4175_676d).next_u64();
    for part in [epoch, index as u64, view as u64] {
        key = Rng::derive(key, part.wrapping_add(1)).next_u64();
    }
    Rng::new(key)
}

/// Per-channel `(x - mean) / std`, applied last.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalize {
    /// ImageNet's channel statistics (RGB).
    pub fn imagenet() -> Self {
        Normalize {
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
        }
    }

    fn apply(&self, px: &mut [f32], c: usize) -> Result<()> {
        if self.mean.len() != c || self.std.len() != c {
            return Err(Error::Config(format!(
                "normalisation has {} means and {} stds for {c}-channel images",
                self.mean.len(),
                self.std.len()
            )));
        }
        for p in px.chunks_exact_mut(c) {
            for ((v, m), s) in p.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
        Ok(())
    }
}

/// Every knob of the augmentations; `imagenet` and `cifar` give the paper's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct AugmentConfig {
    /// Output side (square).
    pub size: usize,
    /// Random resized crop: area fraction and aspect-ratio (w/h) ranges.
    pub crop_area: (f64, f64),
    pub crop_aspect: (f64, f64),
    pub interpolation: Interpolation,
    pub flip_p: f64,
    /// Colour jitter probability and strength s.
    pub color_p: f64,
    pub strength: f64,
    pub grayscale_p: f64,
    /// Gaussian blur probability, sigma range and kernel side as a fraction of the image side.
    pub blur_p: f64,
    pub blur_sigma: (f64, f64),
    pub blur_kernel_frac: f64,
    /// Fraction of the short side kept by the evaluation centre crop (1.0: no crop).
    pub eval_crop: f64,
    pub normalize: Option<Normalize>,
}

impl AugmentConfig {
    /// ImageNet-size defaults (SimCLR): strength 1.0, blur on, eval centre crop 0.875.
    pub fn imagenet(size: usize) -> Self {
        AugmentConfig {
            size,
            crop_area: (0.08, 1.0),
            crop_aspect: (3.0 / 4.0, 4.0 / 3.0),
            interpolation: Interpolation::Bicubic,
            flip_p: 0.5,
            color_p: 0.8,
            strength: 1.0,
            grayscale_p: 0.2,
            blur_p: 0.5,
            blur_sigma: (0.1, 2.0),
            blur_kernel_frac: 0.1,
            eval_crop: 0.875,
            normalize: None,
        }
    }

    /// CIFAR-size defaults: strength 0.5, no blur, no eval crop.
    pub fn cifar(size: usize) -> Self {
        AugmentConfig {
            strength: 0.5,
            blur_p: 0.0,
            eval_crop: 1.0,
            ..AugmentConfig::imagenet(size)
        }
    }

    /// The paper's defaults for a training side: CIFAR's up to 64 px, ImageNet's above.
    pub fn for_size(size: usize) -> Self {
        if size <= 64 {
            AugmentConfig::cifar(size)
        } else {
            AugmentConfig::imagenet(size)
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("augmentation: {m}")));
        let prob = |p: f64| (0.0..=1.0).contains(&p);
        if self.size == 0 || self.size > 4096 {
            return bad(format!("output size {} must be in 1..=4096", self.size));
        }
        let (a0, a1) = self.crop_area;
        if !(a0 > 0.0 && a0 <= a1 && a1 <= 1.0) {
            return bad(format!(
                "crop area range {:?} must satisfy 0 < lo <= hi <= 1",
                self.crop_area
            ));
        }
        let (r0, r1) = self.crop_aspect;
        if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
            return bad(format!(
                "crop aspect range {:?} must satisfy 0 < lo <= hi",
                self.crop_aspect
            ));
        }
        for (name, p) in [
            ("flip", self.flip_p),
            ("colour", self.color_p),
            ("grayscale", self.grayscale_p),
            ("blur", self.blur_p),
        ] {
            if !prob(p) {
                return bad(format!("{name} probability {p} not in [0, 1]"));
            }
        }
        if !(0.0..=1.25).contains(&self.strength) {
            return bad(format!(
                "colour strength {} not in [0, 1.25]",
                self.strength
            ));
        }
        let (s0, s1) = self.blur_sigma;
        if !(s0 > 0.0 && s0 <= s1 && s1.is_finite()) {
            return bad(format!(
                "blur sigma range {:?} must satisfy 0 < lo <= hi",
                self.blur_sigma
            ));
        }
        if !(0.0..=1.0).contains(&self.blur_kernel_frac) {
            return bad(format!(
                "blur kernel fraction {} not in [0, 1]",
                self.blur_kernel_frac
            ));
        }
        if !(self.eval_crop > 0.0 && self.eval_crop <= 1.0) {
            return bad(format!(
                "eval crop fraction {} not in (0, 1]",
                self.eval_crop
            ));
        }
        if let Some(n) = &self.normalize {
            if n.mean.len() != n.std.len() || n.std.iter().any(|&s| s.is_nan() || s <= 0.0) {
                return bad("normalisation needs one positive std per mean".into());
            }
        }
        Ok(())
    }
}

/// A per-image transform. `apply` writes `output_shape(img.channels)` values into `out`.
pub trait Transform: Send + Sync {
    /// (height, width, channels) of the output for inputs with `channels` channels.
    fn output_shape(&self, channels: usize) -> (usize, usize, usize);
    fn apply(&self, img: &Image, rng: &mut Rng, out: &mut [f32]) -> Result<()>;

    /// As `apply`, for `img` decoded at reduced scale from a picture of displayed size `full`:
    /// random crops are drawn on `full`, as on the original, then mapped onto `img`.
    fn apply_full(
        &self,
        img: &Image,
        full: (usize, usize),
        rng: &mut Rng,
        out: &mut [f32],
    ) -> Result<()> {
        let _ = full;
        self.apply(img, rng, out)
    }

    /// The smallest decoded size (h, w) this transform needs from a picture of size `full`,
    /// given the generator it will be applied with; `full` when it cannot tell.
    fn decode_need(&self, full: (usize, usize), rng: &Rng) -> (usize, usize) {
        let _ = rng;
        full
    }

    fn apply_vec(&self, img: &Image, rng: &mut Rng) -> Result<Vec<f32>> {
        let (h, w, c) = self.output_shape(img.channels);
        let mut out = vec![0f32; h * w * c];
        self.apply(img, rng, &mut out)?;
        Ok(out)
    }
}

fn check_out(img: &Image, len: usize, size: usize) -> Result<()> {
    img.check()?;
    if len != size * size * img.channels {
        return Err(Error::Config(format!(
            "transform output buffer has {len} values, need {}",
            size * size * img.channels
        )));
    }
    Ok(())
}

/// Random resized crop + optional flip, the part shared by pretraining and fine-tuning. The
/// box is drawn on the full picture's size and mapped onto `img` (identity at full scale).
fn crop_flip(
    cfg: &AugmentConfig,
    img: &Image,
    full: (usize, usize),
    rng: &mut Rng,
    out: &mut [f32],
) {
    let b = crop::random_crop_box(full.0, full.1, cfg.crop_area, cfg.crop_aspect, rng);
    let b = crop::map_box(b, full, (img.height, img.width));
    let flip = rng.bernoulli(cfg.flip_p);
    crop::resize_crop(img, b, cfg.size, cfg.size, cfg.interpolation, flip, out);
}

/// The decoded size at which the crop the generator will draw still has `cfg.size` pixels on
/// its short side (decoding smaller would upsample what a full decode would downsample).
fn crop_need(cfg: &AugmentConfig, full: (usize, usize), rng: &Rng) -> (usize, usize) {
    let mut r = rng.clone();
    let b = crop::random_crop_box(full.0, full.1, cfg.crop_area, cfg.crop_aspect, &mut r);
    shrunk_for(b, cfg.size, full)
}

/// `full` shrunk as far as crop `b` keeps `size` pixels on its short side.
fn shrunk_for(b: CropBox, size: usize, full: (usize, usize)) -> (usize, usize) {
    let shrink = (b.h.min(b.w) as f64 / size as f64).max(1.0);
    let side = |n: usize| ((n as f64 / shrink).ceil() as usize).clamp(1, n);
    (side(full.0), side(full.1))
}

/// The `Transform` methods the random-crop transforms share: a `cfg.size` square output, and
/// crops drawn on the full picture (so a reduced-scale decode can serve them).
macro_rules! random_crop_transform {
    () => {
        fn output_shape(&self, c: usize) -> (usize, usize, usize) {
            (self.cfg.size, self.cfg.size, c)
        }
        fn apply(&self, img: &Image, rng: &mut Rng, out: &mut [f32]) -> Result<()> {
            self.apply_full(img, (img.height, img.width), rng, out)
        }
        fn decode_need(&self, full: (usize, usize), rng: &Rng) -> (usize, usize) {
            crop_need(&self.cfg, full, rng)
        }
    };
}

/// SimCLR's pretraining augmentation: crop, flip, colour distortion, grayscale, blur.
/// The loader applies it once per view with independent generators.
#[derive(Clone, Debug)]
pub struct PretrainAugment {
    pub cfg: AugmentConfig,
}

impl PretrainAugment {
    pub fn new(cfg: AugmentConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(PretrainAugment { cfg })
    }
}

impl Transform for PretrainAugment {
    random_crop_transform!();
    fn apply_full(
        &self,
        img: &Image,
        full: (usize, usize),
        rng: &mut Rng,
        out: &mut [f32],
    ) -> Result<()> {
        check_out(img, out.len(), self.cfg.size)?;
        let p = params::draw(&self.cfg, full, rng);
        params::apply(&self.cfg, &p, img, full, out)
    }
}

/// Fine-tuning augmentation: random resized crop and flip only.
#[derive(Clone, Debug)]
pub struct FinetuneAugment {
    pub cfg: AugmentConfig,
}

impl FinetuneAugment {
    pub fn new(cfg: AugmentConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(FinetuneAugment { cfg })
    }
}

impl Transform for FinetuneAugment {
    random_crop_transform!();
    fn apply_full(
        &self,
        img: &Image,
        full: (usize, usize),
        rng: &mut Rng,
        out: &mut [f32],
    ) -> Result<()> {
        check_out(img, out.len(), self.cfg.size)?;
        crop_flip(&self.cfg, img, full, rng, out);
        if let Some(n) = &self.cfg.normalize {
            n.apply(out, img.channels)?;
        }
        Ok(())
    }
}

/// Evaluation: centred square crop of `eval_crop` of the short side, resized. Deterministic.
#[derive(Clone, Debug)]
pub struct EvalTransform {
    pub cfg: AugmentConfig,
}

impl EvalTransform {
    pub fn new(cfg: AugmentConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(EvalTransform { cfg })
    }
}

impl Transform for EvalTransform {
    fn output_shape(&self, c: usize) -> (usize, usize, usize) {
        (self.cfg.size, self.cfg.size, c)
    }
    /// The centre crop is a fixed fraction of the picture, so a reduced decode serves it.
    fn decode_need(&self, full: (usize, usize), _rng: &Rng) -> (usize, usize) {
        let b = crop::centre_crop_box(full.0, full.1, self.cfg.eval_crop);
        shrunk_for(b, self.cfg.size, full)
    }
    fn apply(&self, img: &Image, _rng: &mut Rng, out: &mut [f32]) -> Result<()> {
        let cfg = &self.cfg;
        check_out(img, out.len(), cfg.size)?;
        let b = crop::centre_crop_box(img.height, img.width, cfg.eval_crop);
        crop::resize_crop(img, b, cfg.size, cfg.size, cfg.interpolation, false, out);
        if let Some(n) = &cfg.normalize {
            n.apply(out, img.channels)?;
        }
        Ok(())
    }
}

/// Centre-crops the largest square of `img` and resizes it to `side`: the u8
/// `side`x`side`x`c` result, used to preload folders at a training resolution.
pub fn square_resize_u8(img: &Image, side: usize) -> Vec<u8> {
    let b = crop::centre_crop_box(img.height, img.width, 1.0);
    let mut f = vec![0f32; side * side * img.channels];
    crop::resize_crop(img, b, side, side, Interpolation::Bilinear, false, &mut f);
    f.iter().map(|v| (v * 255.0).round() as u8).collect()
}
