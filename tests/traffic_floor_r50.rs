//! The predicted speed-up of issue 15's batch-norm, max-pool and selective-kernel kernels at the target shape (r50_1x_sk1,
//! 224 px, 512 views, bf16): for each kernel family, the bytes the kernels before the issue
//! moved, the bytes they move now and the floor, summed over every batch norm of the encoder and
//! the projection head for one training step, from the formulas of src/cuda/traffic_floor.rs.
//! Prints the table (`cargo test --features cuda-emu --test traffic_floor_r50 -- --nocapture`).
#![cfg(feature = "cuda")]

use simclr::cuda::groups::chunks;
use simclr::cuda::traffic_floor::{self as tf, Bytes, Family, Mask, SkShape, FAMILIES, N_FAMILIES};
use simclr::nn::{ProjectionHead, ResNet, ResNetConfig, Summary};
use simclr::ops::AvgPoolSpec;
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
    let mut total = [Bytes::default(); N_FAMILIES];
    let slot = |f: Family| FAMILIES.iter().position(|&x| x == f).unwrap();
    let add = |t: &mut Bytes, b: Bytes| {
        t.floor += b.floor;
        t.moved += b.moved;
        t.old += b.old;
    };
    let mut count = 0;
    for r in rows.iter().filter(|r| r.kind == "batch_norm") {
        let c = *r.out_shape.last().unwrap();
        let n = views * r.out_shape.iter().product::<usize>();
        let g = chunks(n / c, c).0;
        let (relu, residual) = activation(&r.name, head_layers);
        // The mask comes from x but where a residual went into y.
        let mask = match (relu, residual) {
            (false, _) => Mask::Off,
            (true, true) => Mask::FromOutput,
            (true, false) => Mask::FromInput,
        };
        let per = [
            tf::bn_stats(n, c, e, g, true),
            tf::bn_apply(n, c, e, residual),
            tf::bn_grad_sums(n, c, e, g, mask),
            tf::bn_backward(n, c, e, mask, true, residual),
        ];
        for (t, b) in total.iter_mut().zip(per) {
            add(t, b);
        }
        count += 1;
    }
    // Each SK conv's attention, from its path BN ([h, w, 2c] per view).
    let mut sk_count = 0;
    for r in rows.iter().filter(|r| r.name.ends_with("sk.bn")) {
        let o = &r.out_shape[r.out_shape.len() - 3..];
        let (hw, c) = (o[0] * o[1], o[2] / 2);
        let s = SkShape { n: views, hw, c, e };
        add(&mut total[slot(Family::SkForward)], tf::sk_pool_forward(s));
        add(&mut total[slot(Family::SkForward)], tf::sk_mix_forward(s));
        add(&mut total[slot(Family::SkBackward)], tf::sk_backward(s));
        sk_count += 1;
    }
    assert_eq!(sk_count, 16, "SK convs of r50_1x_sk1");
    // The stem's 3x3 stride-2 max pool: [112, 112, 64] -> [56, 56, 64] per view.
    let (n_in, n_out) = (views * 112 * 112 * 64, views * 56 * 56 * 64);
    total[slot(Family::MaxPoolBackward)] = tf::max_pool_backward(n_in, n_out, e, 3, 2);
    // The ResNet-D shortcut pools (2x2 at the stage's stride, from the stage's input),
    // forward and backward: each input in one window at stride 2, in four at stride 1.
    let (mut side, mut pools) = (56, 0);
    for stage in &net.stages {
        let b = &stage[0];
        let Some(st) = b.shortcut.as_ref().and_then(|s| s.pool_stride) else {
            continue;
        };
        let spec = AvgPoolSpec::resnet_d_shortcut(side, side, st);
        let (ho, _) = spec.window.output_size(side, side).unwrap();
        let (n_in, n_out) = (
            views * side * side * b.conv1.cin,
            views * ho * ho * b.conv1.cin,
        );
        let per_axis = match st {
            1 => 2 * side - 1,
            _ => side,
        };
        let cells = views * per_axis * per_axis * b.conv1.cin;
        add(
            &mut total[slot(Family::AvgPool)],
            tf::avg_pool2d(n_in, n_out, cells, e, false),
        );
        // Windows that tile (stride 2) take the one-read backward.
        let backward = match st {
            2 => tf::avg_pool2d_tiles_backward(n_in, n_out, e),
            _ => tf::avg_pool2d(n_in, n_out, cells, e, true),
        };
        add(&mut total[slot(Family::AvgPool)], backward);
        side = ho;
        pools += 1;
    }
    assert_eq!(pools, 4, "ResNet-D shortcut pools of r50_1x_sk1");
    // The global average pool over [7, 7, 2048] per view, forward and backward.
    let gap = views * 7 * 7 * 2048 + views * 2048;
    add(&mut total[slot(Family::AvgPool)], tf::one_pass(gap, e));
    add(&mut total[slot(Family::AvgPool)], tf::one_pass(gap, e));
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
        if ![
            Family::MaxPoolBackward,
            Family::AvgPool,
            Family::SkForward,
            Family::SkBackward,
        ]
        .contains(f)
        {
            bn.floor += t.floor;
            bn.moved += t.moved;
            bn.old += t.old;
        }
    }
    row("all batch norm", &bn);
    // One pass instead of two over the activation: the statistics' old bytes are about 2x.
    let stats = total[slot(Family::BnStats)];
    assert!(stats.old as f64 / stats.floor as f64 > 1.9);
    // SK backward: 7 passes over u's size before, 3 now, against a floor of 2.5.
    let skb = total[slot(Family::SkBackward)];
    let (old, now) = (
        skb.old as f64 / skb.floor as f64,
        skb.moved as f64 / skb.floor as f64,
    );
    assert!(
        old > 2.7 && now < 1.21,
        "sk backward old {old:.3}x, now {now:.3}x"
    );
}
