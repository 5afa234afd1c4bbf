//! The official SimCLRv2 TF2 release (`gs://simclr-checkpoints-tf2/simclrv2/…`): object-based
//! checkpoints written by `tf.train.Checkpoint(model=…)`, whose keys are the attribute paths of
//! the tf2 code's Keras layers followed by `/.ATTRIBUTES/VARIABLE_VALUE`.
//!
//! Paths (from google-research/simclr `tf2/resnet.py` and `tf2/model.py`): the encoder is
//! `model/resnet_model/`; its stem is the list `initial_conv_relu_max_pool` (convs, BN+ReLU
//! layers, and identity / max-pool layers without variables that still take a list index: an
//! identity sits between the last stem conv and its BN); stage g, block b is
//! `block_groups/{g}/layers/{b}/`. A bottleneck block holds `projection_layers` (ResNet-D:
//! [fixed padding when strided,] average pool, conv, BN; else conv, BN) and
//! `conv_relu_dropblock_layers` (conv, BN, dropblock, then the SK conv or conv + BN, dropblock,
//! conv, BN, dropblock); a basic block `shortcut_layers` and `conv2d_bn_layers`. A conv with
//! fixed padding keeps its kernel under `conv2d/kernel`, a BN+ReLU layer under `bn/`; the SK
//! conv has `conv2d_fixed_padding`, `batch_norm_relu`, `conv2d_0`, `batch_norm_relu_1`,
//! `conv2d_1`. The projection head is `model/_projection_head/linear_layers/{j}/` with
//! `dense/kernel` and `bn_relu/bn/`; the supervised head `model/supervised_head/linear_layer/
//! dense`. No EMA copy; optimizer slots (`.OPTIMIZER_SLOT`) and `global_step` are ignored.

use super::simclr_tf::{bn_tensors, Layout, Plan};
use super::tf_checkpoint::Bundle;
use crate::nn::{BatchNorm, BlockKind, Conv2d, Linear, Middle, ProjectionHead, ResNet};

/// What ends every variable's key.
pub const SUFFIX: &str = "/.ATTRIBUTES/VARIABLE_VALUE";
const ENCODER: &str = "model/resnet_model/";
const HEAD: &str = "model/_projection_head/linear_layers/";
/// The supervised head's dense layer (`kernel`, `bias` below it).
pub const SUPERVISED: &str = "model/supervised_head/linear_layer/dense";

/// The key of the variable at attribute path `path`.
pub fn key(path: &str) -> String {
    format!("{path}{SUFFIX}")
}

/// Whether the checkpoint is object-based (TF2) rather than name-based (TF1).
pub fn is_object_based(bundle: &Bundle) -> bool {
    bundle.entries().keys().any(|k| k.ends_with(SUFFIX))
}

struct Paths(Plan);

impl Paths {
    fn conv(&mut self, c: &Conv2d, path: &str) {
        let tf = key(&format!("{path}/kernel"));
        self.0
            .push((format!("{}.weight", c.name), tf, Layout::ConvKernel));
    }
    fn bn(&mut self, b: &BatchNorm, path: &str) {
        let start = self.0.len();
        bn_tensors(&mut self.0, b, path);
        for entry in &mut self.0[start..] {
            entry.1.push_str(SUFFIX);
        }
    }
}

/// The TF2 keys of `encoder`'s tensors.
pub fn encoder_plan(encoder: &ResNet) -> Plan {
    let mut p = Paths(Vec::new());
    let stem = format!("{ENCODER}initial_conv_relu_max_pool");
    let mut i = 0;
    let last = encoder.stem.convs.len().saturating_sub(1);
    for (k, (conv, bn)) in encoder.stem.convs.iter().enumerate() {
        p.conv(conv, &format!("{stem}/{i}/conv2d"));
        // The identity layer `initial_conv` follows the last conv.
        i += if k == last { 2 } else { 1 };
        p.bn(bn, &format!("{stem}/{i}/bn"));
        i += 1;
    }
    for (g, stage) in encoder.stages.iter().enumerate() {
        for (b, block) in stage.iter().enumerate() {
            let at = format!("{ENCODER}block_groups/{g}/layers/{b}");
            let (short, main) = match block.kind {
                BlockKind::Bottleneck => ("projection_layers", "conv_relu_dropblock_layers"),
                BlockKind::Basic => ("shortcut_layers", "conv2d_bn_layers"),
            };
            if let Some(sc) = &block.shortcut {
                // ResNet-D: a fixed-padding layer when strided, then the average pool.
                let first = match sc.pool_stride {
                    Some(s) if s > 1 => 2,
                    Some(_) => 1,
                    None => 0,
                };
                p.conv(&sc.conv, &format!("{at}/{short}/{first}/conv2d"));
                p.bn(&sc.bn, &format!("{at}/{short}/{}/bn", first + 1));
            }
            let l = |i: usize| format!("{at}/{main}/{i}");
            p.conv(&block.conv1, &format!("{}/conv2d", l(0)));
            p.bn(&block.bn1, &format!("{}/bn", l(1)));
            // Bottleneck blocks put a dropblock layer after every BN+ReLU; basic blocks none.
            let drop = usize::from(block.kind == BlockKind::Bottleneck);
            let mut i = 2 + drop;
            match &block.middle {
                Middle::Sk(sk) => {
                    let s = l(i);
                    p.conv(&sk.conv, &format!("{s}/conv2d_fixed_padding/conv2d"));
                    p.bn(&sk.bn, &format!("{s}/batch_norm_relu/bn"));
                    p.conv(&sk.fc1, &format!("{s}/conv2d_0"));
                    p.bn(&sk.fc_bn, &format!("{s}/batch_norm_relu_1/bn"));
                    p.conv(&sk.fc2, &format!("{s}/conv2d_1"));
                    i += 1 + drop;
                }
                Middle::Plain(conv, bn) => {
                    p.conv(conv, &format!("{}/conv2d", l(i)));
                    p.bn(bn, &format!("{}/bn", l(i + 1)));
                    i += 2 + drop;
                }
            }
            if let Some((conv, bn)) = &block.conv3 {
                p.conv(conv, &format!("{}/conv2d", l(i)));
                p.bn(bn, &format!("{}/bn", l(i + 1)));
            }
        }
    }
    p.0
}

/// The TF2 keys of the projection head's tensors.
pub fn head_plan(head: &ProjectionHead) -> Plan {
    let mut p = Paths(Vec::new());
    for (j, (lin, bn)) in head.layers.iter().enumerate() {
        let Linear { name, .. } = lin;
        let tf = key(&format!("{HEAD}{j}/dense/kernel"));
        p.0.push((format!("{name}.weight"), tf, Layout::DenseKernel));
        p.bn(bn, &format!("{HEAD}{j}/bn_relu/bn"));
    }
    p.0
}

/// The key of head layer `j`'s dense kernel.
pub fn head_kernel(j: usize) -> String {
    key(&format!("{HEAD}{j}/dense/kernel"))
}

/// Conv kernels of the encoder and projection-head layers the checkpoint holds.
pub fn count(bundle: &Bundle) -> (usize, usize) {
    let (mut convs, mut heads) = (0, 0);
    for n in bundle.entries().keys() {
        let Some(path) = n.strip_suffix(SUFFIX) else {
            continue;
        };
        if path.starts_with(ENCODER) && path.ends_with("/kernel") {
            convs += 1;
        }
        if path.starts_with(HEAD) && path.ends_with("/dense/kernel") {
            heads += 1;
        }
    }
    (convs, heads)
}
