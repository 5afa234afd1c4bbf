//! SimCLR's pretraining augmentation split into drawing its random parameters and applying
//! them, so the CPU and the GPU (`data::augment::cuda`) apply the very same draws. The draw
//! order is the one the augmentation has always used (crop, flip, the three coin flips, then
//! the jitter's and the blur's parameters), so seeds keep their streams.

use super::{blur, color, crop, AugmentConfig, CropBox};
use crate::data::dataset::Image;
use crate::{Result, Rng};

/// Every random choice of one view.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewParams {
    /// The crop on the full picture (before any reduced-scale decode).
    pub crop: CropBox,
    pub flip: bool,
    pub jitter: Option<color::Jitter>,
    pub gray: bool,
    /// Gaussian blur's sigma when the blur fires.
    pub blur_sigma: Option<f64>,
}

/// Draws one view's parameters for a picture of displayed size `full`.
pub fn draw(cfg: &AugmentConfig, full: (usize, usize), rng: &mut Rng) -> ViewParams {
    let crop = crop::random_crop_box(full.0, full.1, cfg.crop_area, cfg.crop_aspect, rng);
    let flip = rng.bernoulli(cfg.flip_p);
    // Each decision is drawn whether or not it fires, keeping the streams aligned.
    let (jitter, gray, blur) = (
        rng.bernoulli(cfg.color_p),
        rng.bernoulli(cfg.grayscale_p),
        rng.bernoulli(cfg.blur_p),
    );
    let jitter = jitter.then(|| color::draw_jitter(cfg.strength, rng));
    let blur_sigma = blur.then(|| rng.range(cfg.blur_sigma.0, cfg.blur_sigma.1));
    ViewParams {
        crop,
        flip,
        jitter,
        gray,
        blur_sigma,
    }
}

/// Applies `p` to `img` (decoded at some scale of the `full` picture) into `out`
/// (`cfg.size`² x channels, HWC).
pub fn apply(
    cfg: &AugmentConfig,
    p: &ViewParams,
    img: &Image,
    full: (usize, usize),
    out: &mut [f32],
) -> Result<()> {
    let c = img.channels;
    let b = crop::map_box(p.crop, full, (img.height, img.width));
    crop::resize_crop(img, b, cfg.size, cfg.size, cfg.interpolation, p.flip, out);
    if let Some(j) = &p.jitter {
        color::apply_jitter(out, c, j);
    }
    if p.gray {
        color::grayscale(out, c);
    }
    if let Some(sigma) = p.blur_sigma {
        let k = blur::kernel_size(cfg.size, cfg.blur_kernel_frac);
        blur::gaussian_blur(out, cfg.size, cfg.size, c, k, sigma);
    }
    if let Some(n) = &cfg.normalize {
        n.apply(out, c)?;
    }
    Ok(())
}
