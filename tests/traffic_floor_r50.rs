//! The predicted speed-up of issue 15's batch-norm kernels at the target shape (r50_1x_sk1,
//! 224 px, 512 views, bf16): for each kernel family, the bytes the kernels before the issue
//! moved, the bytes they move now and the floor, summed over every batch norm of the encoder and
//! the projection head for one training step, from the formulas of src/cuda/traffic_floor.rs.
//! Prints the table (`cargo test --features cuda-emu --test traffic_floor_r50 -- --nocapture`).
#![cfg(feature = "cuda")]

use simclr::cuda::groups::chunks;
use simclr::cuda::traffic_floor::{self as tf, Bytes, Family, FAMILIES};
use simclr::nn::{ProjectionHead, ResNet, ResNetConfig, Summary};
use simclr::params::ParamStore;

/// What follows a batch norm of the model, from its layer name (src/nn/resnet.rs, sk_conv.rs,
/// head.rs): the residual block's last BN adds the shortcut, shortcuts and the head's last BN
/// have no activation, every other BN is followed by a ReLU.
fn activation(name: &str, head_layers: usize) -> (bool, bool) {
    let plain = name.ends_with("shortcut.bn") || name == format!("head.{}.bn", head_layers - 1);
    let residual = name.ends_with(".bn3");
    (!plain, residual)
}

#[test]
fn predicted_speed_up_at_r50_1x_sk1_224px_512_views_bf16() {
    let (views, e, head_layers) = (512, 2, 3);
    let cfg = ResNetConfig::parse("r50_1x_sk1")
        .unwrap()
        .for_image_size(224);
    let net = ResNet::new(&mut ParamStore::meta(), "encoder", &cfg).unwrap();
    let mut rows = net.describe(224).unwrap().rows;
    let head = ProjectionHead::new(&mut ParamStore::meta(), "head", cfg.out_dim(), 128, 3).unwrap();
    let mut hs = Summary::default();
    head.describe(&[1, cfg.out_dim()], &mut hs);
    rows.extend(hs.rows);
    let mut total = [Bytes::default(); 5];
    let mut count = 0;
    for r in rows.iter().filter(|r| r.kind == "batch_norm") {
        let c = *r.out_shape.last().unwrap();
        let n = views * r.out_shape.iter().product::<usize>();
        let g = chunks(n / c, c).0;
        let (relu, residual) = activation(&r.name, head_layers);
        let per = [
            tf::bn_stats(n, c, e, g, true),
            tf::bn_apply(n, c, e, residual),
            tf::bn_grad_sums(n, c, e, g, relu),
            tf::bn_backward(n, c, e, relu, true, residual),
        ];
        for (t, b) in total.iter_mut().zip(per) {
            t.floor += b.floor;
            t.moved += b.moved;
            t.old += b.old;
        }
        count += 1;
    }
    // The stem's 3x3 stride-2 max pool: [112, 112, 64] -> [56, 56, 64] per view.
    let (n_in, n_out) = (views * 112 * 112 * 64, views * 56 * 56 * 64);
    total[4] = tf::max_pool_backward(n_in, n_out, e, 3, 2);
    assert_eq!(count, 74, "batch norms of r50_1x_sk1 + a 3-layer head");
    println!("r50_1x_sk1, 224 px, {views} views, bf16: {count} batch norms, MB per step");
    println!(
        "{:<24} {:>10} {:>10} {:>10} {:>12} {:>12}",
        "family", "old", "now", "floor", "old/floor", "now/floor"
    );
    let row = |name: &str, t: &Bytes| {
        let r = |v: u64| v as f64 / t.floor as f64;
        let mb = |v: u64| v as f64 / 1e6;
        println!(
            "{name:<24} {:>10.1} {:>10.1} {:>10.1} {:>11.2}x {:>11.3}x",
            mb(t.old),
            mb(t.moved),
            mb(t.floor),
            r(t.old),
            r(t.moved)
        );
    };
    let mut bn = Bytes::default();
    for (f, t) in FAMILIES.iter().zip(&total) {
        row(f.name(), t);
        assert!(t.floor <= t.moved && t.moved <= t.old, "{f:?}");
        if *f != Family::MaxPoolBackward {
            bn.floor += t.floor;
            bn.moved += t.moved;
            bn.old += t.old;
        }
    }
    row("all batch norm", &bn);
    // One pass instead of two over the activation: the statistics' old bytes are about 2x.
    let stats = total[FAMILIES.iter().position(|&f| f == Family::BnStats).unwrap()];
    assert!(stats.old as f64 / stats.floor as f64 > 1.9);
}
