//! The engine against PyTorch: fixtures written by tests/fixtures/gen.py (float64, plain torch
//! ops, NCHW) for an SK bottleneck block and a small SK-ResNet with its loss. We run the same
//! computation in f64 and in f32 and compare outputs, input and parameter gradients, and the
//! BN running statistics after the step.

use simclr::autograd::Tape;
use simclr::nn::{Block, Ctx, Linear, ResNet, ResNetConfig};
use simclr::ops;
use simclr::params::ParamStore;
use simclr::testing::{assert_close, load_fixture, tolerance};
use simclr::{DType, Tensor};
use std::collections::HashMap;
use std::path::Path;

fn fixture(name: &str) -> HashMap<String, Tensor> {
    load_fixture(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
}

fn load_params(store: &mut ParamStore, fx: &HashMap<String, Tensor>) {
    for id in store.ids() {
        let name = store.name(id).to_string();
        let t = fx
            .get(&format!("param/{name}"))
            .unwrap_or_else(|| panic!("fixture lacks param/{name}"));
        store
            .set_value(id, t.to_dtype(store.dtype()).unwrap())
            .unwrap();
    }
}

/// Compares every parameter gradient and every BN running statistic with the fixture.
fn check_store(store: &ParamStore, fx: &HashMap<String, Tensor>, tol: f64, what: &str) {
    for id in store.ids() {
        let name = store.name(id);
        if store.is_trainable(id) {
            let g = store
                .grad(id)
                .unwrap_or_else(|| panic!("{what}: no gradient for {name}"));
            assert_close(
                &format!("{what}: grad {name}"),
                g,
                &fx[&format!("grad/{name}")],
                tol,
            );
        } else {
            assert_close(
                &format!("{what}: running {name}"),
                store.value(id).unwrap(),
                &fx[&format!("running/{name}")],
                tol,
            );
        }
    }
}

fn tiny_config() -> ResNetConfig {
    simclr::testing::tiny_sk_config(false)
}

// Tolerances: the longest reduction is a batch-norm statistic or a convolution's receptive field
// (both at most 512 terms here); the block chains 8 layers on its longest path, the network 40.
const BLOCK_K: usize = 512;
const BLOCK_DEPTH: usize = 8;
const NET_K: usize = 512;
const NET_DEPTH: usize = 40;

fn run_block(dtype: DType) {
    let fx = fixture("sk_block.safetensors");
    let mut store = ParamStore::new(dtype, 0);
    let block = Block::new(&mut store, &tiny_config(), "block", 16, 8, 2, true).unwrap();
    load_params(&mut store, &fx);
    let mut tape = Tape::new();
    let x = tape.leaf(fx["x"].to_dtype(dtype).unwrap());
    let r = tape.constant(fx["r"].to_dtype(dtype).unwrap());
    let y = block
        .forward(&mut Ctx::new(&mut tape, &mut store, true), &x)
        .unwrap();
    let yr = ops::mul(&mut tape, &y, &r).unwrap();
    let loss = ops::sum(&mut tape, &yr).unwrap();
    let grads = tape.backward(&loss, &mut store).unwrap();
    let tol = tolerance(dtype, BLOCK_K, BLOCK_DEPTH);
    let what = format!("sk block {}", dtype.name());
    assert_close(&format!("{what}: y"), y.value(), &fx["y"], tol);
    assert_close(
        &format!("{what}: grad x"),
        grads.get(&x).unwrap(),
        &fx["grad/x"],
        tol,
    );
    check_store(&store, &fx, tol, &what);
}

#[test]
fn sk_block_matches_pytorch_f64() {
    run_block(DType::F64);
}

#[test]
fn sk_block_matches_pytorch_f32() {
    run_block(DType::F32);
}

fn run_resnet(dtype: DType) {
    let fx = fixture("sk_resnet.safetensors");
    let mut store = ParamStore::new(dtype, 0);
    let cfg = tiny_config();
    let net = ResNet::new(&mut store, "encoder", &cfg).unwrap();
    let classifier = Linear::new(&mut store, "classifier", cfg.out_dim(), 5, true).unwrap();
    load_params(&mut store, &fx);
    let labels: Vec<usize> = fx["labels"]
        .to_vec_f64()
        .unwrap()
        .iter()
        .map(|&v| v as usize)
        .collect();
    let mut tape = Tape::new();
    let x = tape.leaf(fx["x"].to_dtype(dtype).unwrap());
    let mut ctx = Ctx::new(&mut tape, &mut store, true);
    let h = net.forward(&mut ctx, &x).unwrap();
    let logits = classifier.forward(&mut ctx, &h).unwrap();
    let loss = ops::cross_entropy(&mut tape, &logits, &labels).unwrap();
    let grads = tape.backward(&loss, &mut store).unwrap();
    let tol = tolerance(dtype, NET_K, NET_DEPTH);
    let what = format!("sk resnet {}", dtype.name());
    assert_close(
        &format!("{what}: logits"),
        logits.value(),
        &fx["logits"],
        tol,
    );
    assert_close(&format!("{what}: loss"), loss.value(), &fx["loss"], tol);
    assert_close(
        &format!("{what}: grad x"),
        grads.get(&x).unwrap(),
        &fx["grad/x"],
        tol,
    );
    check_store(&store, &fx, tol, &what);
}

#[test]
fn small_sk_resnet_matches_pytorch_f64() {
    run_resnet(DType::F64);
}

#[test]
fn small_sk_resnet_matches_pytorch_f32() {
    run_resnet(DType::F32);
}
