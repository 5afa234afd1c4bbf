//! Our encoder as a torchvision ResNet state dict and back.
//!
//! Which of our networks are torchvision's, layer for layer (the others are refused):
//! - `sk0` only: `sk1` adds selective kernels and the ResNet-D stem and shortcuts.
//! - Bottleneck depths (50, 101, 152, 200) only: our r18/r34, like the official TF2 code, give
//!   the first block of `layer1` a projection shortcut, where torchvision's BasicBlock net has
//!   an identity.
//! - The ImageNet stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool, padding 3 and 1): images above
//!   32 px. At 32 px and below we use a 3x3/1 stem without pool, which torchvision lacks.
//! - Everything else matches: the stride sits on the 3x3 conv of a bottleneck ("v1.5"), the
//!   shortcut of a stage's first block is a strided 1x1 conv + BN (`downsample.0/1`), BN eps
//!   1e-5 and momentum 0.1, convolutions without bias. Widths: 1x is `resnet{50,101,152}`;
//!   other widths scale every channel count (stem included), which torchvision's constructors
//!   cannot build (its `wide_resnet50_2` widens only the 3x3 convs), so they load into a model
//!   built at that width with torchvision's names.
//!
//! Layouts: our conv weights are OHWI, torchvision's OIHW; linear weights are [out, in] in
//! both. Each BN gains an int64 `num_batches_tracked` (0: we do not count batches; torchvision
//! reads it only when `momentum=None`).

use super::st_io::{Named, Tensors, Value};
use crate::nn::{BlockKind, ResNetConfig, StemPoolPadding};
use crate::params::ParamStore;
use crate::{Error, Result, Tensor};

/// Refuses the configurations torchvision has no counterpart for, saying why.
pub fn check_mappable(cfg: &ResNetConfig) -> Result<()> {
    let name = cfg.name();
    let why = if cfg.sk {
        Some("sk1 (selective kernels, ResNet-D stem and shortcuts) has no torchvision counterpart; use an sk0 model".to_string())
    } else if cfg.block == BlockKind::Basic {
        Some("our basic-block nets (r18, r34) give layer1.0 a projection shortcut (as the official TF2 code does) where torchvision has an identity; use depth 50, 101, 152 or 200".to_string())
    } else if cfg.small_stem {
        Some("trained at 32 px or less, it has the small-image stem (3x3/1 conv, no max pool) that torchvision lacks; only models with the ImageNet stem (image size above 32) map".to_string())
    } else if cfg.stem_pool_padding != StemPoolPadding::Symmetric {
        Some(format!(
            "its stem max pool pads as TensorFlow's SAME ({} = {}, an imported official model), torchvision's pads every side: the features would differ",
            StemPoolPadding::KEY,
            cfg.stem_pool_padding.name()
        ))
    } else {
        None
    };
    match why {
        Some(w) => Err(Error::Config(format!("{name}: {w}"))),
        None => Ok(()),
    }
}

/// Torchvision's name for one of our tensors (`encoder.*`, and `classifier.*` as `fc.*`).
pub fn torchvision_name(ours: &str) -> Option<String> {
    if let Some(rest) = ours.strip_prefix("classifier.") {
        return Some(format!("fc.{rest}"));
    }
    let rest = ours.strip_prefix("encoder.")?;
    let rest = rest
        .replacen("stem.conv0.", "conv1.", 1)
        .replacen("stem.bn0.", "bn1.", 1)
        .replacen(".shortcut.conv.", ".downsample.0.", 1)
        .replacen(".shortcut.bn.", ".downsample.1.", 1);
    Some(rest)
}

/// `[a, b, c, d]` row-major → the same values with axes reordered by `perm`.
pub fn permute4(v: &[f32], s: [usize; 4], perm: [usize; 4]) -> Vec<f32> {
    let os = perm.map(|p| s[p]);
    let stride = [s[1] * s[2] * s[3], s[2] * s[3], s[3], 1];
    let mut out = Vec::with_capacity(v.len());
    for i0 in 0..os[0] {
        for i1 in 0..os[1] {
            for i2 in 0..os[2] {
                for i3 in 0..os[3] {
                    let idx = [i0, i1, i2, i3];
                    let mut src = 0;
                    for (k, &p) in perm.iter().enumerate() {
                        src += idx[k] * stride[p];
                    }
                    out.push(v[src]);
                }
            }
        }
    }
    out
}

/// OHWI → OIHW.
pub fn ohwi_to_oihw(v: &[f32], s: [usize; 4]) -> Vec<f32> {
    permute4(v, s, [0, 3, 1, 2])
}

/// OIHW → OHWI.
pub fn oihw_to_ohwi(v: &[f32], s: [usize; 4]) -> Vec<f32> {
    permute4(v, s, [0, 2, 3, 1])
}

fn f32_values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_vec_f64()?.into_iter().map(|x| x as f32).collect())
}

/// The store's encoder (and a classifier reading the encoder output, as `fc`) in torchvision's
/// names and layout.
pub fn export(store: &ParamStore, with_fc: bool) -> Result<Tensors> {
    let mut out = Tensors::new();
    for e in store.entries() {
        if e.name.starts_with("classifier.") && !with_fc {
            continue;
        }
        let Some(tv) = torchvision_name(&e.name) else {
            continue;
        };
        let id = store.find(&e.name).expect("entry of this store");
        let v = f32_values(store.value(id)?)?;
        let t = match e.shape[..] {
            [o, h, w, i] => Named::f32(&[o, i, h, w], ohwi_to_oihw(&v, [o, h, w, i])),
            _ => Named::f32(&e.shape, v),
        };
        if let Some(bn) = tv.strip_suffix(".running_var") {
            out.insert(
                format!("{bn}.num_batches_tracked"),
                Named::i64(&[], vec![0]),
            );
        }
        out.insert(tv, t);
    }
    Ok(out)
}

/// Fills every `encoder.*` tensor of `store` from a torchvision state dict. Every encoder
/// tensor must be present with its shape, and the file may hold nothing else but `fc.*` and
/// `num_batches_tracked`; nothing is written until all are checked. Returns the tensors set.
pub fn import(store: &mut ParamStore, tv: &Tensors, file: &std::path::Path) -> Result<usize> {
    let bad = |msg: String| Error::Checkpoint {
        path: file.to_path_buf(),
        msg,
    };
    let mut used = std::collections::BTreeSet::new();
    let mut updates = Vec::new();
    for e in store
        .entries()
        .iter()
        .filter(|e| e.name.starts_with("encoder."))
    {
        let name = torchvision_name(&e.name).expect("encoder tensor");
        let want: Vec<usize> = match e.shape[..] {
            [o, h, w, i] => vec![o, i, h, w],
            _ => e.shape.clone(),
        };
        let t = tv.get(&name).ok_or_else(|| {
            bad(format!(
                "missing tensor '{name}' (shape {want:?}) of a torchvision-layout {}",
                "ResNet"
            ))
        })?;
        if t.shape != want {
            return Err(bad(format!(
                "tensor '{name}' has shape {:?}, but the model needs {want:?} (a different depth or width?)",
                t.shape
            )));
        }
        let Value::F32(v) = &t.value else {
            return Err(bad(format!(
                "tensor '{name}' is an integer tensor; weights must be floats"
            )));
        };
        if let Some(x) = v.iter().find(|x| !x.is_finite()) {
            return Err(bad(format!(
                "tensor '{name}' holds a non-finite value ({x})"
            )));
        }
        let v = match e.shape[..] {
            [o, h, w, i] => oihw_to_ohwi(v, [o, i, h, w]),
            _ => v.clone(),
        };
        used.insert(name);
        updates.push((e.name.clone(), Tensor::from_vec(v, &e.shape)?));
    }
    let extra = tv.keys().find(|k| {
        !used.contains(*k) && !k.starts_with("fc.") && !k.ends_with(".num_batches_tracked")
    });
    if let Some(k) = extra {
        return Err(bad(format!(
            "unexpected tensor '{k}' (shape {:?}) that a torchvision ResNet of this depth and width does not have",
            tv[k].shape
        )));
    }
    let n = updates.len();
    for (name, t) in updates {
        let id = store.find(&name).expect("entry of this store");
        let t = t.to_dtype(store.dtype())?;
        store.set_value(id, t)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tf_same_stem_pool_is_refused_by_name() {
        let cfg = ResNetConfig::parse("r50_1x_sk0").unwrap();
        assert!(check_mappable(&cfg).is_ok());
        let tf = cfg.with_stem_pool_padding(StemPoolPadding::SameTf);
        let e = check_mappable(&tf).unwrap_err().to_string();
        assert!(e.contains("stem_pool_padding = same-tf"), "{e}");
    }
}
