//! Inputs for the benches: random tensors made fast (hundreds of millions of elements for the
//! GPU cases), parameter stores of named architectures, and a loose agreement check between a
//! fused path and its unfused counterpart.

use rayon::prelude::*;
use simclr::params::{Init, ParamStore};
use simclr::train::model::{ModelMeta, SimClrNet};
use simclr::{DType, Device, Error, Result, Tensor};

/// Uniform entries in [-1, 1) from a counter-based hash: no sequential generator, so a
/// 200 M-element activation is made in a fraction of a second on all cores.
pub fn uniform(shape: &[usize], seed: u64, device: Device, dtype: DType) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n as u64)
        .into_par_iter()
        .map(|i| {
            let h = splitmix(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i);
            (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    on(Tensor::from_vec(v, shape)?, device, dtype)
}

/// Moves an f32 CPU tensor to `device`, then casts there (the GPU casts; the CPU only ever
/// benches f32).
pub fn on(t: Tensor, device: Device, dtype: DType) -> Result<Tensor> {
    t.to_device(device)?.to_dtype(dtype)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// What the pretraining step builds: the encoder and a 3-layer head to 128 (the paper's).
pub fn simclr_meta(model: &str, image_size: usize) -> ModelMeta {
    ModelMeta {
        stage: "pretrain".into(),
        model: model.into(),
        image_size,
        in_channels: 3,
        proj_layers: 3,
        proj_dim: 128,
        proj_layer: 0,
        num_classes: 10,
        stem_pool_padding: simclr::nn::StemPoolPadding::Symmetric,
    }
}

/// The parameter list of a pretraining network (encoder + head) with uniform values, on
/// `device` in f32: names, shapes and kinds from a meta store, so no normal draws are spent on
/// 795 M parameters.
pub fn param_store(model: &str, device: Device, seed: u64) -> Result<ParamStore> {
    let meta = meta_store(model)?;
    let mut store = ParamStore::new(DType::F32, seed);
    for e in meta.entries() {
        let id = store.add(&e.name, &e.shape, e.kind, Init::Zeros)?;
        let v = uniform(&e.shape, seed ^ id.0 as u64, device, DType::F32)?;
        store.set_value(id, simclr::ops::elementwise::scale_forward(&v, 0.05)?)?;
    }
    Ok(store)
}

/// Names, shapes and kinds of a pretraining network's tensors, nothing allocated.
pub fn meta_store(model: &str) -> Result<ParamStore> {
    let mut meta = ParamStore::meta();
    SimClrNet::new(&mut meta, simclr_meta(model, 224))?;
    Ok(meta)
}

/// Forward MACs per image of a pretraining network (encoder + head) at `image_size`.
pub fn macs_per_image(model: &str, image_size: usize) -> Result<f64> {
    let mut meta = ParamStore::meta();
    let net = SimClrNet::new(&mut meta, simclr_meta(model, image_size))?;
    let enc = net.encoder.describe(image_size)?;
    let mut head = simclr::nn::Summary::default();
    net.head.describe(&[1, net.encoder.out_dim()], &mut head);
    Ok((enc.total_macs() + head.total_macs()) as f64)
}

/// Whether a fused path and its unfused counterpart compute the same thing before their times
/// are compared (a smoke check, not a test): elements may differ by at most `tol` of the largest
/// value, except for one in 10⁴, since values at a ReLU kink may round to either side.
pub fn agree(what: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    let (x, y) = (a.to_vec_f64()?, b.to_vec_f64()?);
    if x.len() != y.len() {
        return Err(Error::Config(format!(
            "{what}: fused gives {:?}, unfused {:?}",
            a.shape(),
            b.shape()
        )));
    }
    let scale = y.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
    let tol = match a.dtype() {
        DType::BF16 | DType::F16 => 5e-2,
        _ => 1e-2,
    };
    let diffs = x.iter().zip(&y).map(|(p, q)| (p - q).abs() / scale);
    let (bad, worst) = diffs.fold((0usize, 0f64), |(n, w), d| {
        (n + usize::from(d.is_nan() || d > tol), w.max(d))
    });
    if bad > x.len() / 10_000 {
        return Err(Error::Config(format!(
            "{what}: fused and unfused differ in {bad} of {} values by more than {tol:.0e} of \
             the largest (worst {worst:.3e})",
            x.len()
        )));
    }
    Ok(())
}
