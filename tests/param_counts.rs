//! Encoder parameter counts of the 13 architectures in the SimCLRv2 paper's table, built on a
//! meta store (shapes only), so even r152_3x_sk1 (795 M) allocates nothing.

use simclr::nn::{ResNet, ResNetConfig};
use simclr::params::ParamStore;

/// (name, millions as printed in the paper).
const PAPER: [(&str, f64); 13] = [
    ("r50_1x_sk0", 24.0),
    ("r50_1x_sk1", 35.0),
    ("r50_2x_sk0", 94.0),
    ("r50_2x_sk1", 140.0),
    ("r101_1x_sk0", 43.0),
    ("r101_1x_sk1", 65.0),
    ("r101_2x_sk0", 170.0),
    ("r101_2x_sk1", 257.0),
    ("r152_1x_sk0", 58.0),
    ("r152_1x_sk1", 89.0),
    ("r152_2x_sk0", 233.0),
    ("r152_2x_sk1", 354.0),
    ("r152_3x_sk1", 795.0),
];

fn count(name: &str) -> usize {
    let mut store = ParamStore::meta();
    let cfg = ResNetConfig::parse(name).unwrap();
    ResNet::new(&mut store, "encoder", &cfg).unwrap();
    store.num_trainable()
}

#[test]
fn encoder_parameter_counts_match_the_paper() {
    let mut report = String::new();
    let mut ok = true;
    for (name, millions) in PAPER {
        let n = count(name);
        // The paper prints whole millions. Eleven entries are the count rounded to nearest; the
        // r152 2x entries (232.25 M → 233, 353.40 M → 354) are within one printed unit, so that
        // is the bound.
        ok &= (n as f64 / 1e6 - millions).abs() < 1.0;
        report += &format!(
            "{name}: {n} ({:.2} M, paper {millions} M)\n",
            n as f64 / 1e6
        );
    }
    assert!(ok, "parameter counts differ from the paper:\n{report}");
    println!("{report}");
}

#[test]
fn plain_resnet50_matches_torchvision_exactly() {
    // torchvision's resnet50 has 25,557,032 parameters, of which the 1000-way fc layer holds
    // 2048·1000 + 1000; without SK the architectures are the same.
    assert_eq!(count("r50_1x_sk0"), 25_557_032 - 2_049_000);
}

#[test]
fn meta_store_allocates_nothing() {
    let mut store = ParamStore::meta();
    ResNet::new(
        &mut store,
        "encoder",
        &ResNetConfig::parse("r152_3x_sk1").unwrap(),
    )
    .unwrap();
    assert!(store.entries().iter().all(|e| e.value.is_none()));
}

/// The official TF2 code puts SK convs only in bottleneck blocks (its basic `ResidualBlock`
/// gets the ResNet-D shortcut and nothing else); so do we, and the default model is a
/// bottleneck one so that the main job exercises selective kernels.
#[test]
fn sk_lives_in_bottleneck_blocks_and_the_default_model_has_it() {
    let small = |name: &str| {
        let mut store = ParamStore::meta();
        let cfg = ResNetConfig::parse(name).unwrap().for_image_size(32);
        ResNet::new(&mut store, "encoder", &cfg).unwrap();
        store.num_trainable()
    };
    for depth in [18, 34] {
        // With the small-image stem (the ResNet-D stem is not used) only the shortcuts differ,
        // and a 2x2 pool + 1x1 conv has the weights of a strided 1x1 conv.
        let (sk0, sk1) = (
            small(&format!("r{depth}_0.25x_sk0")),
            small(&format!("r{depth}_0.25x_sk1")),
        );
        assert_eq!(sk0, sk1, "r{depth}");
        assert!(!ResNetConfig::parse(&format!("r{depth}_1x_sk1"))
            .unwrap()
            .has_sk_convs());
    }
    let default = simclr::train::Config::default().model;
    let cfg = ResNetConfig::parse(&default).unwrap();
    assert!(cfg.has_sk_convs(), "{default}");
    let mut store = ParamStore::meta();
    ResNet::new(&mut store, "encoder", &cfg.clone().for_image_size(16)).unwrap();
    assert!(
        store.entries().iter().any(|e| e.name.contains(".sk.")),
        "{default}"
    );
    let sk0 = default.replace("_sk1", "_sk0");
    assert!(small(&default) > small(&sk0), "{default} vs {sk0}");
}
