//! Pretraining augmentation: the paper's settings for the training size (ImageNet's colour
//! strength 1.0 and Gaussian blur above 64 px, CIFAR's strength 0.5 without blur at and below),
//! unless `--color-strength` or `--blur` say otherwise (the built-in dataset, whose colours are
//! nuisance by construction, uses strength 1.0).

use super::common::Env;
use crate::data::AugmentConfig;

/// Blur probability when `--blur true` forces it on at a small size (the paper's p).
const BLUR_P: f64 = 0.5;

/// The augmentation of pretraining for `size`, with the configuration's overrides applied.
pub fn pretrain_augment(size: usize, strength: Option<f64>, blur: Option<bool>) -> AugmentConfig {
    let base = AugmentConfig::for_size(size);
    let blur_p = match blur {
        Some(true) if base.blur_p == 0.0 => BLUR_P,
        Some(true) => base.blur_p,
        Some(false) => 0.0,
        None => base.blur_p,
    };
    AugmentConfig {
        strength: strength.unwrap_or(base.strength),
        blur_p,
        ..base
    }
}

/// The built-in dataset's colours and brightness are pure nuisance, drawn per image; the
/// paper's full strength (its ImageNet setting) keeps them from being the cue that tells two
/// images apart, at any size.
const SYNTHETIC_STRENGTH: f64 = 1.0;

/// [`pretrain_augment`] for the run's training size and configuration.
pub fn for_env(env: &Env) -> AugmentConfig {
    let pc = &env.cfg.pretrain;
    let strength = pc
        .color_strength
        .or((env.cfg.dataset == "synthetic").then_some(SYNTHETIC_STRENGTH));
    pretrain_augment(env.image_size, strength, pc.blur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_settings_by_size_and_overrides() {
        let big = pretrain_augment(224, None, None);
        assert_eq!((big.strength, big.blur_p), (1.0, 0.5));
        assert_eq!((big.blur_sigma, big.blur_kernel_frac), ((0.1, 2.0), 0.1));
        let small = pretrain_augment(32, None, None);
        assert_eq!((small.strength, small.blur_p), (0.5, 0.0));
        let forced = pretrain_augment(32, Some(0.8), Some(true));
        assert_eq!((forced.strength, forced.blur_p), (0.8, 0.5));
        assert_eq!(pretrain_augment(224, None, Some(false)).blur_p, 0.0);
    }
}
