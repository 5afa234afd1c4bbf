//! Train-mode batch norm + ReLU, and batch norm + residual add + ReLU, forward and backward: the
//! fused ops (`bn_act`: statistics, one apply pass, one backward pass) against batch_norm then
//! add then relu as separate ops, at the shapes where ResNet-50 uses them (NHWC).

mod common;

use common::{data, run_case, Case, Work};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use simclr::ops::batch_norm::{batch_norm_backward, batch_norm_train_forward};
use simclr::ops::bn_act::{
    batch_norm_add_relu_backward, batch_norm_add_relu_forward, batch_norm_relu_backward,
    batch_norm_relu_forward, bn_act_stats, BnActSaved,
};
use simclr::ops::elementwise::{add_forward, relu_backward, relu_forward};
use simclr::{DType, Device, Result, Tensor};

const EPS: f64 = 1e-5;

/// NHWC shapes of the BN + ReLU outputs (block-internal, width c) and of the BN + add + ReLU
/// outputs (block ends, width 4c) of each ResNet-50 stage: batch 256 at 224 px on the GPU,
/// batch 32 at 112 px on the CPU.
fn shapes(device: Device, residual: bool) -> Vec<[usize; 4]> {
    let (n, hw) = match device {
        Device::Cpu => (32, 28),
        Device::Cuda(_) => (256, 56),
    };
    let expand = if residual { 4 } else { 1 };
    (0..4)
        .map(|i| [n, hw >> i, hw >> i, (64 << i) * expand])
        .collect()
}

/// Compulsory traffic with two-pass batch norm (T = one activation tensor): forward reads x
/// for the statistics and again to apply, writes y (3T); backward reads dy and x for the
/// reductions, then dy and x again and writes dx (5T); a residual adds its read and the write
/// of its gradient (2T). About 15 FLOP per element in all.
fn work(shape: &[usize; 4], dtype: DType, residual: bool) -> Work {
    let n = shape.iter().product::<usize>() as f64;
    let t = n * dtype.size_in_bytes() as f64;
    Work {
        flops: 15.0 * n,
        bytes: t * if residual { 10.0 } else { 8.0 },
    }
}

struct Inputs {
    x: Tensor,
    residual: Option<Tensor>,
    dy: Tensor,
    gamma: Tensor,
    beta: Tensor,
    /// The same in f32, as the fused op takes them (our BN parameters and statistics are f32);
    /// the unfused batch_norm wants the activations' dtype.
    gamma32: Tensor,
    beta32: Tensor,
}

fn inputs(shape: &[usize; 4], device: Device, dtype: DType, residual: bool) -> Result<Inputs> {
    let c = shape[3];
    Ok(Inputs {
        x: data::uniform(shape, 1, device, dtype)?,
        residual: if residual {
            Some(data::uniform(shape, 2, device, dtype)?)
        } else {
            None
        },
        dy: data::uniform(shape, 3, device, dtype)?,
        gamma: data::uniform(&[c], 4, device, dtype)?,
        beta: data::uniform(&[c], 5, device, dtype)?,
        gamma32: data::uniform(&[c], 4, device, DType::F32)?,
        beta32: data::uniform(&[c], 5, device, DType::F32)?,
    })
}

/// Returns (y, dx, dgamma).
fn fused(s: &Inputs) -> Result<(Tensor, Tensor, Tensor)> {
    let (mean, invstd, _) = bn_act_stats(&s.x, EPS)?;
    let y = match &s.residual {
        Some(r) => batch_norm_add_relu_forward(&s.x, r, &s.gamma32, &s.beta32, &mean, &invstd)?,
        None => batch_norm_relu_forward(&s.x, &s.gamma32, &s.beta32, &mean, &invstd)?,
    };
    let saved = BnActSaved {
        x: &s.x,
        y: &y,
        gamma: &s.gamma32,
        beta: &s.beta32,
        mean: &mean,
        invstd: &invstd,
        batch_stats: true,
    };
    let (dx, dg) = if s.residual.is_some() {
        let (dx, dg, _, _) = batch_norm_add_relu_backward(&saved, &s.dy)?;
        (dx, dg)
    } else {
        let (dx, dg, _) = batch_norm_relu_backward(&saved, &s.dy)?;
        (dx, dg)
    };
    Ok((y, dx, dg))
}

/// The same through batch_norm, add and relu, each its own pass.
fn unfused(s: &Inputs) -> Result<(Tensor, Tensor, Tensor)> {
    let (bn, mean, invstd, _) = batch_norm_train_forward(&s.x, &s.gamma, Some(&s.beta), EPS)?;
    let pre = match &s.residual {
        Some(r) => add_forward(&bn, r)?,
        None => bn,
    };
    let y = relu_forward(&pre)?;
    let dpre = relu_backward(&pre, &s.dy)?;
    let (dx, dg, _) = batch_norm_backward(&s.x, &dpre, &s.gamma, &mean, &invstd, true)?;
    Ok((y, dx, dg))
}

fn bench(c: &mut Criterion) {
    for device in common::devices("bn_act") {
        let dtype = match device {
            Device::Cpu => DType::F32,
            Device::Cuda(_) => DType::BF16,
        };
        for residual in [false, true] {
            let kernel = if residual { "bn_add_relu" } else { "bn_relu" };
            let group_name = format!("{kernel}-{}", common::device_name(device));
            let mut group = c.benchmark_group(&group_name);
            for shape in shapes(device, residual) {
                let [n, h, w, ch] = shape;
                let case = |function| Case {
                    group: group_name.clone(),
                    function,
                    param: format!("{n}x{h}x{w}x{ch}"),
                    device,
                    dtype,
                    work: work(&shape, dtype, residual),
                    spec: json!({"kernel": kernel, "shape_nhwc": shape, "residual": residual}),
                };
                run_case(
                    &mut group,
                    case("fused"),
                    || inputs(&shape, device, dtype, residual),
                    |s| fused(s).map(drop),
                );
                run_case(
                    &mut group,
                    case("unfused"),
                    || {
                        let s = inputs(&shape, device, dtype, residual)?;
                        let (a, b) = (fused(&s)?, unfused(&s)?);
                        data::agree("y", &a.0, &b.0)?;
                        data::agree("dx", &a.1, &b.1)?;
                        data::agree("dgamma", &a.2, &b.2)?;
                        Ok(s)
                    },
                    |s| unfused(s).map(drop),
                );
            }
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
