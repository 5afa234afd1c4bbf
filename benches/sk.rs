//! Selective-kernel attention, forward and backward: the fused `sk_pool` + `sk_mix` (one pass
//! each way per half) against separate ops (narrow, add, global average pool, broadcast,
//! multiply, add, and their gradients). The attention logits z come in as an input here; in
//! the network they come from the pooled vector through two 1x1 convs.

mod common;

use common::{data, run_case, Case, Work};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use simclr::ops::channels::{concat_forward, narrow_forward};
use simclr::ops::elementwise::{
    add_forward, exp_forward, full_like, ln_forward, mul_forward, scale_forward, sub_forward,
};
use simclr::ops::pool::{global_avg_pool_backward, global_avg_pool_forward};
use simclr::ops::sk::{sk_backward_du, sk_mix_backward_dz, sk_mix_forward, sk_pool_forward};
use simclr::{DType, Device, Result, Tensor};

/// NHWC shapes of the paths u = [u0 | u1] in each ResNet-50 stage (SK width c, 2c channels):
/// batch 256 at 224 px on the GPU, batch 32 at 112 px on the CPU.
fn shapes(device: Device) -> Vec<[usize; 4]> {
    let (n, hw) = match device {
        Device::Cpu => (32, 28),
        Device::Cuda(_) => (256, 56),
    };
    (0..4).map(|i| [n, hw >> i, hw >> i, 128 << i]).collect()
}

/// With T one path tensor [N, H, W, C]: the pool reads u (2T); the mix reads u and writes y
/// (3T); the backward reads u and dy (3T) for dz, then dy again and writes du (3T), the pool's
/// gradient folded in (6T; the floor reads dy once, 5T).
fn work(shape: &[usize; 4], dtype: DType) -> Work {
    let n = shape.iter().product::<usize>() as f64 / 2.0;
    Work {
        flops: 12.0 * n,
        bytes: 11.0 * n * dtype.size_in_bytes() as f64,
    }
}

struct Inputs {
    u: Tensor,
    z: Tensor,
    /// Gradients arriving at the mix output y and at the pooled vector s.
    dy: Tensor,
    ds: Tensor,
}

fn inputs(shape: &[usize; 4], device: Device, dtype: DType) -> Result<Inputs> {
    let [n, h, w, c2] = *shape;
    Ok(Inputs {
        u: data::uniform(shape, 11, device, dtype)?,
        z: data::uniform(&[n, c2], 12, device, dtype)?,
        dy: data::uniform(&[n, h, w, c2 / 2], 13, device, dtype)?,
        ds: data::uniform(&[n, c2 / 2], 14, device, dtype)?,
    })
}

/// (s, y, du, dz), the gradient of u summed over both halves.
type Outputs = (Tensor, Tensor, Tensor, Tensor);

fn fused(i: &Inputs) -> Result<Outputs> {
    let s = sk_pool_forward(&i.u)?;
    let y = sk_mix_forward(&i.u, &i.z)?;
    // As the linked pair runs it: the logit gradient, then all of du in one pass.
    let dz = sk_mix_backward_dz(&i.u, &i.z, &i.dy)?;
    let du = sk_backward_du(Some((&i.dy, &i.z)), Some(&i.ds), i.u.shape())?;
    Ok((s, y, du, dz))
}

/// a [N, C] repeated over H and W: the global pool's gradient spreads a/(H·W).
fn broadcast(a: &Tensor, shape: &[usize]) -> Result<Tensor> {
    scale_forward(
        &global_avg_pool_backward(a, shape)?,
        (shape[1] * shape[2]) as f64,
    )
}

fn unfused(i: &Inputs) -> Result<Outputs> {
    let [n, h, w, c2] = [
        i.u.shape()[0],
        i.u.shape()[1],
        i.u.shape()[2],
        i.u.shape()[3],
    ];
    let c = c2 / 2;
    let path = [n, h, w, c];
    let (u0, u1) = (narrow_forward(&i.u, 0, c)?, narrow_forward(&i.u, c, c)?);
    let s = global_avg_pool_forward(&add_forward(&u0, &u1)?)?;
    // Softmax over the pair: a0 = 1 / (1 + exp(z1 − z0)) = exp(−ln(1 + exp(z1 − z0))).
    let (z0, z1) = (narrow_forward(&i.z, 0, c)?, narrow_forward(&i.z, c, c)?);
    let ones = full_like(&z0, 1.0)?;
    let softplus = ln_forward(&add_forward(&exp_forward(&sub_forward(&z1, &z0)?)?, &ones)?)?;
    let a0 = exp_forward(&scale_forward(&softplus, -1.0)?)?;
    let a1 = sub_forward(&ones, &a0)?;
    let (b0, b1) = (broadcast(&a0, &path)?, broadcast(&a1, &path)?);
    let y = add_forward(&mul_forward(&b0, &u0)?, &mul_forward(&b1, &u1)?)?;
    // Backward: du_k = a_k·dy + ds/(H·W); da_k = Σ_hw dy·u_k; dz0 = a0·a1·(da0 − da1) = −dz1.
    let pool_grad = global_avg_pool_backward(&i.ds, &path)?;
    let du0 = add_forward(&mul_forward(&b0, &i.dy)?, &pool_grad)?;
    let du1 = add_forward(&mul_forward(&b1, &i.dy)?, &pool_grad)?;
    let hw = (h * w) as f64;
    let da0 = scale_forward(&global_avg_pool_forward(&mul_forward(&i.dy, &u0)?)?, hw)?;
    let da1 = scale_forward(&global_avg_pool_forward(&mul_forward(&i.dy, &u1)?)?, hw)?;
    let dz0 = mul_forward(&mul_forward(&a0, &a1)?, &sub_forward(&da0, &da1)?)?;
    let dz1 = scale_forward(&dz0, -1.0)?;
    Ok((
        s,
        y,
        concat_forward(&[&du0, &du1])?,
        concat_forward(&[&dz0, &dz1])?,
    ))
}

fn bench(c: &mut Criterion) {
    for device in common::devices("sk") {
        let dtype = match device {
            Device::Cpu => DType::F32,
            Device::Cuda(_) => DType::BF16,
        };
        let group_name = format!("sk-{}", common::device_name(device));
        let mut group = c.benchmark_group(&group_name);
        for shape in shapes(device) {
            let [n, h, w, c2] = shape;
            let case = |function| Case {
                group: group_name.clone(),
                function,
                param: format!("{n}x{h}x{w}x{c2}"),
                device,
                dtype,
                work: work(&shape, dtype),
                spec: json!({"kernel": "sk", "shape_nhwc": shape}),
            };
            run_case(
                &mut group,
                case("fused"),
                || inputs(&shape, device, dtype),
                |i| fused(i).map(drop),
            );
            run_case(
                &mut group,
                case("unfused"),
                || {
                    let i = inputs(&shape, device, dtype)?;
                    let (a, b) = (fused(&i)?, unfused(&i)?);
                    for (what, p, q) in [("s", &a.0, &b.0), ("y", &a.1, &b.1)] {
                        data::agree(what, p, q)?;
                    }
                    data::agree("du", &a.2, &b.2)?;
                    data::agree("dz", &a.3, &b.3)?;
                    Ok(i)
                },
                |i| unfused(i).map(drop),
            );
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
