//! Test support shared by unit and integration tests: fresh seeds, a finite-difference gradient
//! checker in f64, and tolerances derived from the dtype rather than picked by eye.

pub mod augment_tolerance;
#[cfg(feature = "cuda")]
pub mod decode_tolerance;
#[cfg(feature = "cuda")]
pub mod device;

use crate::autograd::{Tape, Var};
use crate::{ops, DType, Result, Rng, Tensor};

/// A seed that differs on every run (so tests see fresh inputs), unless `SIMCLR_TEST_SEED` pins
/// it. The seed is printed, so a failure can be replayed.
pub fn fresh_seed(test: &str) -> u64 {
    let seed = std::env::var("SIMCLR_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            (t as u64) ^ (t >> 64) as u64
        });
    eprintln!("{test}: seed {seed} (replay with SIMCLR_TEST_SEED={seed})");
    seed
}

/// Tolerance of a float computation whose longest reduction has `k` terms, chained `depth` times:
/// with round-to-nearest, a sum of k terms has a relative error that behaves like u·sqrt(k)
/// (u the unit roundoff); chained layers add their errors. The factor 8 puts the bound far in
/// the tail of that distribution.
pub fn tolerance(dtype: DType, k: usize, depth: usize) -> f64 {
    8.0 * dtype.unit_roundoff() * (k.max(1) as f64).sqrt() * depth.max(1) as f64
}

/// Largest |got − want| relative to the largest |want| (a norm-wise relative error, which is
/// what floating-point error bounds of reductions describe).
/// The bits of each value of `t` (as f64, which every dtype converts to exactly): for tests
/// that want two results equal bit for bit.
pub fn bits(t: &Tensor) -> Vec<u64> {
    t.to_vec_f64()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

pub fn relative_error(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    let scale = want
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    got.iter()
        .zip(want)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

/// Asserts `relative_error(got, want) <= tol`, naming the worst element.
pub fn assert_close(what: &str, got: &Tensor, want: &Tensor, tol: f64) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes differ");
    let (g, w) = (got.to_vec_f64().unwrap(), want.to_vec_f64().unwrap());
    let err = relative_error(&g, &w);
    if err > tol || err.is_nan() {
        let (i, _) = g
            .iter()
            .zip(&w)
            .enumerate()
            .fold((0, -1.0), |(bi, bd), (i, (a, b))| {
                let d = (a - b).abs();
                if d > bd {
                    (i, d)
                } else {
                    (bi, bd)
                }
            });
        panic!(
            "{what}: relative error {err:.3e} > tolerance {tol:.3e}; worst at {i}: got {} want {}",
            g[i], w[i]
        );
    }
}

/// Checks the gradients of `f` with respect to every input against central finite differences,
/// all in f64. The output is reduced to a scalar with fixed random weights so every output
/// element matters. Up to `samples` elements of each input are probed.
///
/// Error model: a central difference with step h = u^(1/3)·max(1,|x|) has truncation (h²·f''')
/// and roundoff (u·|L|/h) both of order u^(2/3)·S, where S = Σ|y·r| bounds the loss's
/// magnitude; we allow 100 times that. Sharp functions (a softmax at temperature 0.1 of short
/// vectors) have third derivatives far above S, so the estimate is Richardson-extrapolated from
/// steps h and h/2, which cancels the h² term and leaves truncation of order h⁴.
pub fn check_gradients(
    name: &str,
    inputs: &[Tensor],
    samples: usize,
    seed: u64,
    f: impl Fn(&mut Tape, &[Var]) -> Result<Var>,
) {
    let mut rng = Rng::derive(seed, 0x6772_6164);
    let mut tape = Tape::new();
    let vars: Vec<Var> = inputs.iter().map(|t| tape.leaf(t.clone())).collect();
    let out = f(&mut tape, &vars).unwrap_or_else(|e| panic!("{name}: forward failed: {e}"));
    let r = Tensor::randn(out.shape(), 1.0, DType::F64, &mut rng).unwrap();
    let rv = tape.constant(r.clone());
    let prod = ops::mul(&mut tape, &out, &rv).unwrap();
    let loss = ops::sum(&mut tape, &prod).unwrap();
    let mut store = crate::params::ParamStore::new(DType::F64, 0);
    let grads = tape
        .backward(&loss, &mut store)
        .unwrap_or_else(|e| panic!("{name}: backward failed: {e}"));

    let rs = r.to_vec_f64().unwrap();
    let eval = |xs: &[Tensor]| -> f64 {
        let mut t = Tape::inference();
        let vs: Vec<Var> = xs.iter().map(|x| t.constant(x.clone())).collect();
        let y = f(&mut t, &vs).unwrap().value().to_vec_f64().unwrap();
        y.iter().zip(&rs).map(|(a, b)| a * b).sum()
    };
    let y0 = out.value().to_vec_f64().unwrap();
    let s: f64 = y0.iter().zip(&rs).map(|(a, b)| (a * b).abs()).sum();
    let u = DType::F64.unit_roundoff();
    let tol = 100.0 * u.powf(2.0 / 3.0) * (1.0 + s);

    for (i, x) in inputs.iter().enumerate() {
        let g = match grads.get(&vars[i]) {
            Some(g) => g.to_vec_f64().unwrap(),
            None => vec![0.0; x.numel()], // no path from this input to the output
        };
        let xs = x.to_vec_f64().unwrap();
        let idx: Vec<usize> = if xs.len() <= samples {
            (0..xs.len()).collect()
        } else {
            (0..samples).map(|_| rng.below(xs.len())).collect()
        };
        for j in idx {
            let central = |h: f64| {
                let mut plus = inputs.to_vec();
                let mut minus = inputs.to_vec();
                let mut xp = xs.clone();
                xp[j] += h;
                plus[i] = Tensor::from_f64(&xp, x.shape(), DType::F64).unwrap();
                xp[j] -= 2.0 * h;
                minus[i] = Tensor::from_f64(&xp, x.shape(), DType::F64).unwrap();
                (eval(&plus) - eval(&minus)) / (2.0 * h)
            };
            let h = u.powf(1.0 / 3.0) * xs[j].abs().max(1.0);
            let numeric = (4.0 * central(h / 2.0) - central(h)) / 3.0;
            let diff = (numeric - g[j]).abs();
            assert!(
                diff <= tol,
                "{name}: d/d input{i}[{j}]: analytic {} vs numeric {numeric} (diff {diff:.3e} > tol {tol:.3e}, seed {seed})",
                g[j]
            );
        }
    }
}

/// A random f64 tensor for gradient checks.
pub fn randn64(shape: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::randn(shape, 1.0, DType::F64, rng).unwrap()
}

/// A random f64 tensor whose entries stay at least `gap` away from zero (for ReLU-like kinks).
pub fn randn64_away_from_zero(shape: &[usize], gap: f64, rng: &mut Rng) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|_| {
            let z = rng.normal();
            z.signum() * (z.abs() + gap)
        })
        .collect();
    Tensor::from_f64(&v, shape, DType::F64).unwrap()
}

/// Reads a safetensors fixture (as written by the PyTorch generator scripts under
/// `tests/fixtures/`) into f64 CPU tensors by name.
pub fn load_fixture(path: &std::path::Path) -> std::collections::HashMap<String, Tensor> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    crate::checkpoint::read_tensors(&bytes, path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
        .into_iter()
        .map(|(k, t)| (k, t.to_dtype(DType::F64).unwrap()))
        .collect()
}

/// The small SK-ResNet the model tests use: one SK bottleneck block per stage, base width 8,
/// the ResNet-D stem (or the small-image stem with `small_stem`).
pub fn tiny_sk_config(small_stem: bool) -> crate::nn::ResNetConfig {
    crate::nn::ResNetConfig {
        depth: 0,
        block: crate::nn::BlockKind::Bottleneck,
        layers: [1, 1, 1, 1],
        width: 1.0,
        sk: true,
        base: 8,
        small_stem,
        in_channels: 3,
        sk_ratio: 0.0625,
        sk_min_dim: 32,
        stem_pool_padding: crate::nn::StemPoolPadding::Symmetric,
    }
}

/// Gives every non-weight tensor of `store` a random value (biases, BN scales and shifts, running
/// statistics), from `seed`. A fresh network has zero gammas at the end of each residual block,
/// which would hide the residual branches from a gradient check; weights are random already.
pub fn randomize_non_weights(store: &mut crate::params::ParamStore, seed: u64) {
    use crate::params::ParamKind;
    let mut rng = Rng::derive(seed, 1);
    for id in store.ids().collect::<Vec<_>>() {
        let shape = store.entry(id).shape.clone();
        let dtype = store.value(id).map(|t| t.dtype()).unwrap_or(store.dtype());
        let n: usize = shape.iter().product();
        let mut draw = |f: &dyn Fn(f64, f64) -> f64| -> Vec<f64> {
            (0..n).map(|_| f(rng.normal(), rng.uniform())).collect()
        };
        let v = match store.kind(id) {
            ParamKind::Weight => continue,
            ParamKind::Bias | ParamKind::BnBeta => draw(&|z, _| 0.1 * z),
            ParamKind::BnGamma => draw(&|z, _| 1.0 + 0.2 * z),
            ParamKind::BnRunningMean => draw(&|z, _| 0.1 * z),
            ParamKind::BnRunningVar => draw(&|_, u| 0.5 + u),
        };
        let t = Tensor::from_f64(&v, &shape, dtype).unwrap();
        store.set_value(id, t).unwrap();
    }
}

/// The tiny SK-ResNet ([`tiny_sk_config`], small stem) with a 2-layer head of `proj_dim`, built
/// in `dtype` from `seed` with every tensor random ([`randomize_non_weights`]): the network the
/// gradient-cache and data-parallel tests compare steps on.
pub fn tiny_simclr_net(
    seed: u64,
    dtype: DType,
    image_size: usize,
    proj_dim: usize,
) -> (crate::train::model::SimClrNet, crate::params::ParamStore) {
    use crate::nn::{ProjectionHead, ResNet};
    let cfg = tiny_sk_config(true);
    let mut store = crate::params::ParamStore::new(dtype, seed);
    let encoder = ResNet::new(&mut store, "encoder", &cfg).unwrap();
    let head = ProjectionHead::new(&mut store, "head", cfg.out_dim(), proj_dim, 2).unwrap();
    randomize_non_weights(&mut store, seed);
    let meta = crate::train::model::ModelMeta {
        stage: "pretrain".into(),
        model: cfg.name(),
        image_size,
        in_channels: 3,
        proj_layers: 2,
        proj_dim,
        proj_layer: 0,
        num_classes: 0,
        stem_pool_padding: crate::nn::StemPoolPadding::Symmetric,
    };
    let net = crate::train::model::SimClrNet {
        meta,
        encoder,
        head,
    };
    (net, store)
}
