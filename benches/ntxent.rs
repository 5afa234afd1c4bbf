//! NT-Xent forward + backward: the fused kernel (`ntxent_forward`, which returns the loss and
//! its gradient and never stores the 2N x 2N similarities) against the materialised path from
//! our separate ops (similarity GEMM, diagonal mask, cross-entropy, two gradient GEMMs).

mod common;

use common::{data, run_case, Case, Work};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use simclr::ops::elementwise::{add_forward, scale_forward};
use simclr::ops::loss::cross_entropy_forward;
use simclr::ops::matmul::matmul_forward;
use simclr::ops::normalize::l2_normalize_forward;
use simclr::ops::ntxent::ntxent_forward;
use simclr::{DType, Device, Result, Tensor};

const TAU: f64 = 0.1;
/// The largest 2N the materialised path is run at: at 2N = 65536 one f32 copy of the
/// similarity matrix is 17 GB, and the path holds several.
const UNFUSED_MAX_ROWS: usize = 8192;

/// (2N, d) per device: SimCLRv2 batches on the GPU, a CPU-sized subset here.
fn sizes(device: Device) -> Vec<(usize, usize)> {
    match device {
        Device::Cpu => vec![(512, 128), (512, 512), (2048, 128)],
        Device::Cuda(_) => [512, 8192, 65536]
            .iter()
            .flat_map(|&m| [(m, 128), (m, 512)])
            .collect(),
    }
}

/// Forward similarities once and the gradient product once: 4·(2N)²·d; bytes: read z, write dz.
fn work(m: usize, d: usize, dtype: DType) -> Work {
    let (m, d) = (m as f64, d as f64);
    Work {
        flops: 4.0 * m * m * d,
        bytes: 2.0 * m * d * dtype.size_in_bytes() as f64,
    }
}

/// L2-normalised random projections [2N, d] (the loss's input in training).
fn projections(m: usize, d: usize, device: Device, dtype: DType) -> Result<Tensor> {
    let z = data::uniform(&[m, d], 7, device, DType::F32)?;
    l2_normalize_forward(&z)?.to_dtype(dtype)
}

struct Unfused {
    z: Tensor,
    /// −1e9 on the diagonal: an anchor is not its own negative.
    mask: Tensor,
    labels: Vec<usize>,
}

fn unfused_setup(z: Tensor) -> Result<Unfused> {
    let m = z.shape()[0];
    let mut mask = vec![0f32; m * m];
    for i in 0..m {
        mask[i * m + i] = -1e9;
    }
    let mask = data::on(Tensor::from_vec(mask, &[m, m])?, z.device(), z.dtype())?;
    let labels = (0..m).map(|i| (i + m / 2) % m).collect();
    Ok(Unfused { z, mask, labels })
}

/// Returns (loss, dz) like `ntxent_forward`, through the [2N, 2N] logits.
fn unfused(s: &Unfused) -> Result<(Tensor, Tensor)> {
    let sim = matmul_forward(&s.z, &s.z, false, true)?;
    let logits = add_forward(&scale_forward(&sim, 1.0 / TAU)?, &s.mask)?;
    let (loss, dlogits) = cross_entropy_forward(&logits, &s.labels)?;
    let dsim = scale_forward(&dlogits, 1.0 / TAU)?;
    // sim = z·zᵀ, so dz = dsim·z + dsimᵀ·z.
    let dz = add_forward(
        &matmul_forward(&dsim, &s.z, false, false)?,
        &matmul_forward(&dsim, &s.z, true, false)?,
    )?;
    Ok((loss, dz))
}

fn bench(c: &mut Criterion) {
    for device in common::devices("ntxent") {
        let dtype = match device {
            Device::Cpu => DType::F32,
            Device::Cuda(_) => DType::BF16,
        };
        let group_name = format!("ntxent-{}", common::device_name(device));
        let mut group = c.benchmark_group(&group_name);
        for (m, d) in sizes(device) {
            let case = |function| Case {
                group: group_name.clone(),
                function,
                param: format!("2N={m} d={d}"),
                device,
                dtype,
                work: work(m, d, dtype),
                spec: json!({"kernel": "ntxent", "rows": m, "dim": d, "tau": TAU}),
            };
            run_case(
                &mut group,
                case("fused"),
                || projections(m, d, device, dtype),
                |z| ntxent_forward(z, None, TAU).map(drop),
            );
            if m > UNFUSED_MAX_ROWS {
                continue;
            }
            run_case(
                &mut group,
                case("unfused"),
                || {
                    let s = unfused_setup(projections(m, d, device, dtype)?)?;
                    let (loss, dz) = ntxent_forward(&s.z, None, TAU)?;
                    let (uloss, udz) = unfused(&s)?;
                    data::agree("ntxent loss", &loss, &uloss)?;
                    data::agree("ntxent dz", &dz, &udz)?;
                    Ok(s)
                },
                |s| unfused(s).map(drop),
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
