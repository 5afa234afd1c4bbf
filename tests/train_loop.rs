//! A plain training loop (SGD + cross-entropy) on a small SK-ResNet lowers the loss on fixed data.

use simclr::autograd::Tape;
use simclr::nn::{Ctx, Linear, ResNet, ResNetConfig};
use simclr::ops;
use simclr::optim::Sgd;
use simclr::params::ParamStore;
use simclr::testing::fresh_seed;
use simclr::{DType, Rng, Tensor};

#[test]
fn sgd_lowers_the_loss_of_a_small_sk_resnet() {
    let seed = fresh_seed("train loop");
    let mut rng = Rng::new(seed);
    let cfg = ResNetConfig {
        sk_min_dim: 8,
        ..simclr::testing::tiny_sk_config(true)
    };
    let mut store = ParamStore::new(DType::F32, seed);
    let net = ResNet::new(&mut store, "encoder", &cfg).unwrap();
    let head = Linear::new(&mut store, "classifier", cfg.out_dim(), 4, true).unwrap();
    // Fixed data: 16 images of 4 classes, each class a different mean colour plus noise.
    let (n, size) = (16, 12);
    let labels: Vec<usize> = (0..n).map(|i| i % 4).collect();
    let mut px = Vec::with_capacity(n * size * size * 3);
    for &l in &labels {
        for _ in 0..size * size {
            for c in 0..3 {
                px.push(
                    if c == l % 3 { 0.8 } else { 0.1 }
                        + if l == 3 { 0.3 } else { 0.0 }
                        + 0.2 * rng.normal() as f32,
                );
            }
        }
    }
    let x = Tensor::from_vec(px, &[n, size, size, 3]).unwrap();
    let mut sgd = Sgd::new(0.05, 0.9, 0.0);
    let mut losses = Vec::new();
    for _ in 0..15 {
        let mut tape = Tape::new();
        let xv = tape.constant(x.clone());
        let mut ctx = Ctx::new(&mut tape, &mut store, true);
        let h = net.forward(&mut ctx, &xv).unwrap();
        let logits = head.forward(&mut ctx, &h).unwrap();
        let loss = ops::cross_entropy(&mut tape, &logits, &labels).unwrap();
        losses.push(loss.value().item().unwrap());
        tape.backward(&loss, &mut store).unwrap();
        sgd.step(&mut store).unwrap();
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    // Chance level is ln 4 ≈ 1.39; fitting 16 images must at least halve the loss.
    assert!(last < 0.5 * first, "loss did not fall: {losses:?}");
}
