//! The official SimCLRv2 release (TF1 checkpoints `model.ckpt-250228` of google-research/simclr)
//! into our networks.
//!
//! Names: the TF1 code builds the ResNet with `tf.layers` under the scope `base_model`, so its
//! convolutions are `conv2d`, `conv2d_1`, … and its batch norms `batch_normalization`,
//! `batch_normalization_1`, …, each numbered in the order the layers are created: the stem,
//! then per block the projection shortcut (conv, BN) first, then conv1/BN, the 3x3 conv/BN
//! (or the SK conv: 3x3 conv to 2C, BN, the 1x1 conv to the attention width, BN, the 1x1 conv
//! to 2C), then conv3/BN. The projection head is `head_contrastive/nl_{i}/dense/kernel` and
//! `…/nl_{i}/batch_normalization/*` (no beta in the last layer); the EMA copy of everything is
//! under `ema_model/`; optimizer slots end in `/Momentum`. Layouts: conv kernels are HWIO (ours
//! OHWI), dense kernels [in, out] (ours [out, in]). BN: gamma, beta, moving_mean,
//! moving_variance; eps 1e-5 in both.
//!
//! Two layers of the official forward pad as TensorFlow does, and our networks follow them: the
//! stem max pool is TF "SAME" (3x3/2: on an even size only after the last row and column), so
//! an import records `StemPoolPadding::SameTf` in its metadata; the ResNet-D stride-2 average
//! pool appends a zero row and column that count in the average (`AvgPoolSpec::resnet_d_shortcut`,
//! the same in every model of ours). Every other layer is the same computation.

use super::tf_checkpoint::Bundle;
use crate::nn::{BatchNorm, Conv2d, Linear, Middle, ProjectionHead, ResNet};
use crate::params::ParamStore;
use crate::{Error, Result, Tensor};

/// How one TF tensor becomes one of ours.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Layout {
    /// HWIO → OHWI.
    ConvKernel,
    /// [in, out] → [out, in].
    DenseKernel,
    Same,
}

/// (our name, TF name, layout) of every tensor, in a fixed order.
pub type Plan = Vec<(String, String, Layout)>;

struct Namer {
    prefix: String,
    convs: usize,
    bns: usize,
    plan: Plan,
}

fn numbered(base: &str, k: usize) -> String {
    if k == 0 {
        base.to_string()
    } else {
        format!("{base}_{k}")
    }
}

/// A BN's gamma (beta when it has one), moving mean and variance under the TF prefix `tf`.
pub fn bn_tensors(plan: &mut Plan, bn: &BatchNorm, tf: &str) {
    let mut pairs = vec![("weight", "gamma")];
    if bn.beta.is_some() {
        pairs.push(("bias", "beta"));
    }
    pairs.extend([
        ("running_mean", "moving_mean"),
        ("running_var", "moving_variance"),
    ]);
    for (ours, theirs) in pairs {
        plan.push((
            format!("{}.{ours}", bn.name),
            format!("{tf}/{theirs}"),
            Layout::Same,
        ));
    }
}

impl Namer {
    fn conv(&mut self, c: &Conv2d) {
        let tf = format!("{}{}/kernel", self.prefix, numbered("conv2d", self.convs));
        self.convs += 1;
        self.plan
            .push((format!("{}.weight", c.name), tf, Layout::ConvKernel));
    }
    fn bn(&mut self, b: &BatchNorm) {
        let tf = format!(
            "{}{}",
            self.prefix,
            numbered("batch_normalization", self.bns)
        );
        self.bns += 1;
        bn_tensors(&mut self.plan, b, &tf);
    }
}

/// The TF names of `encoder`'s tensors (under `ema_model/` with `ema`), in creation order.
pub fn encoder_plan(encoder: &ResNet, ema: bool) -> Plan {
    let scope = if ema { "ema_model/" } else { "" };
    let mut n = Namer {
        prefix: format!("{scope}base_model/"),
        convs: 0,
        bns: 0,
        plan: Vec::new(),
    };
    for (conv, bn) in &encoder.stem.convs {
        n.conv(conv);
        n.bn(bn);
    }
    for block in encoder.stages.iter().flatten() {
        if let Some(sc) = &block.shortcut {
            n.conv(&sc.conv);
            n.bn(&sc.bn);
        }
        n.conv(&block.conv1);
        n.bn(&block.bn1);
        match &block.middle {
            Middle::Sk(sk) => {
                n.conv(&sk.conv);
                n.bn(&sk.bn);
                n.conv(&sk.fc1);
                n.bn(&sk.fc_bn);
                n.conv(&sk.fc2);
            }
            Middle::Plain(conv, bn) => {
                n.conv(conv);
                n.bn(bn);
            }
        }
        if let Some((conv, bn)) = &block.conv3 {
            n.conv(conv);
            n.bn(bn);
        }
    }
    n.plan
}

/// The TF names of the projection head's tensors.
pub fn head_plan(head: &ProjectionHead, ema: bool) -> Plan {
    let scope = if ema { "ema_model/" } else { "" };
    let mut plan = Vec::new();
    for (i, (lin, bn)) in head.layers.iter().enumerate() {
        let tf = format!("{scope}head_contrastive/nl_{i}");
        let Linear { name, .. } = lin;
        plan.push((
            format!("{name}.weight"),
            format!("{tf}/dense/kernel"),
            Layout::DenseKernel,
        ));
        bn_tensors(&mut plan, bn, &format!("{tf}/batch_normalization"));
    }
    plan
}

/// Blocks of conv kernels and projection-head layers the checkpoint holds under `scope`.
pub fn count(bundle: &Bundle, ema: bool) -> (usize, usize) {
    let scope = if ema { "ema_model/" } else { "" };
    let base = format!("{scope}base_model/");
    let head = format!("{scope}head_contrastive/");
    let names = bundle.entries().keys();
    let (mut convs, mut heads) = (0, 0);
    for n in names {
        if n.starts_with(&base)
            && n.ends_with("/kernel")
            && n.contains("/conv2d")
            && !n.contains("/Momentum")
        {
            convs += 1;
        }
        if n.starts_with(&head) && n.ends_with("/dense/kernel") {
            heads += 1;
        }
    }
    (convs, heads)
}

/// Reads every tensor of `plan` from `bundle` into `store`, checking shapes; nothing is
/// written until all are read.
pub fn load(
    store: &mut ParamStore,
    bundle: &Bundle,
    plan: &Plan,
    file: &std::path::Path,
) -> Result<()> {
    let bad = |msg: String| Error::Checkpoint {
        path: file.to_path_buf(),
        msg,
    };
    let mut updates = Vec::with_capacity(plan.len());
    for (ours, tf, layout) in plan {
        let id = store
            .find(ours)
            .ok_or_else(|| Error::Config(format!("no tensor '{ours}' in the model")))?;
        let want = store.entry(id).shape.clone();
        let (shape, v) = bundle.read_f32(tf)?;
        let (shape, v) = match (layout, &shape[..]) {
            (Layout::ConvKernel, &[h, w, i, o]) => (
                vec![o, h, w, i],
                super::torchvision::permute4(&v, [h, w, i, o], [3, 0, 1, 2]),
            ),
            (Layout::DenseKernel, &[i, o]) => {
                let mut t = vec![0f32; v.len()];
                for r in 0..i {
                    for c in 0..o {
                        t[c * i + r] = v[r * o + c];
                    }
                }
                (vec![o, i], t)
            }
            (Layout::Same, _) => (shape.clone(), v),
            _ => return Err(bad(format!("'{tf}' has shape {shape:?}, not a {layout:?}"))),
        };
        if shape != want {
            return Err(bad(format!(
                "'{tf}' (for {ours}) has shape {shape:?} after conversion, but the model needs {want:?}: a different depth, width or SK setting?"
            )));
        }
        if let Some(x) = v.iter().find(|x| !x.is_finite()) {
            return Err(bad(format!("'{tf}' holds a non-finite value ({x})")));
        }
        updates.push((id, Tensor::from_vec(v, &shape)?.to_dtype(store.dtype())?));
    }
    for (id, t) in updates {
        store.set_value(id, t)?;
    }
    Ok(())
}
