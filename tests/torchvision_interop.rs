//! Issue 17, item 9: torchvision ResNet state dicts in and out. The fixture
//! (tests/fixtures/torchvision_resnet/generate.py) is a narrow torchvision ResNet with its
//! images and features; a real resnet50 round trip through the binary is checked by the same
//! script (`--check-export`, output in export_check.json).

use std::path::{Path, PathBuf};

#[path = "support/mod.rs"]
mod support;
use simclr::interop::embed::FeatureNet;
use simclr::interop::st_io::{self, Value};
use simclr::interop::torchvision;
use simclr::nn::{ActivationPolicy, BlockKind, ResNetConfig};
use simclr::params::ParamStore;
use simclr::testing::{assert_close, load_fixture, randomize_non_weights, tolerance};
use simclr::train::model::{self, ModelMeta, SimClrNet};
use simclr::DType;
use support::bin::simclr;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torchvision_resnet")
        .join(name)
}

/// The generator's network: torchvision Bottleneck blocks [2, 1, 1, 1], stem width 8.
fn fixture_config() -> ResNetConfig {
    ResNetConfig {
        depth: 0,
        block: BlockKind::Bottleneck,
        layers: [2, 1, 1, 1],
        width: 1.0,
        sk: false,
        base: 8,
        small_stem: false,
        in_channels: 3,
        sk_ratio: 0.0625,
        sk_min_dim: 32,
        stem_pool_padding: simclr::nn::StemPoolPadding::Symmetric,
    }
}

fn imported_fixture() -> (FeatureNet, ParamStore, st_io::Tensors) {
    let path = fixture("model.safetensors");
    let tv = st_io::read(&path).unwrap();
    let mut store = ParamStore::new(DType::F32, 1);
    let net = FeatureNet::from_config(&mut store, &fixture_config(), 2, 16, 0).unwrap();
    let n = torchvision::import(&mut store, &tv, &path).unwrap();
    assert_eq!(n, store.len(), "every encoder tensor comes from the file");
    (net, store, tv)
}

#[test]
fn torchvision_features_equal_ours_after_import() {
    let (net, mut store, _) = imported_fixture();
    let want = load_fixture(&fixture("expected.safetensors"));
    let images = want["images_nhwc"].to_dtype(DType::F32).unwrap();
    let got = net
        .embed(&mut store, images, ActivationPolicy::default())
        .unwrap();
    assert_eq!(got.shape(), &[4, 256]);
    // Longest reduction: layer4's 3x3 conv over 64 channels; 17 chained conv/BN layers.
    let tol = tolerance(DType::F32, 9 * 64, 17);
    assert_close(
        "features",
        &got.to_dtype(DType::F64).unwrap(),
        &want["features"],
        tol,
    );
}

#[test]
fn export_gives_back_the_torchvision_state_dict() {
    let (_, store, tv) = imported_fixture();
    let out = torchvision::export(&store, false).unwrap();
    let expected: Vec<&String> = tv.keys().filter(|k| !k.starts_with("fc.")).collect();
    assert_eq!(
        out.keys().collect::<Vec<_>>(),
        expected,
        "torchvision's names, no fc"
    );
    for (k, t) in &out {
        assert_eq!(t.shape, tv[k].shape, "{k}");
        match (&t.value, &tv[k].value) {
            (Value::F32(a), Value::F32(b)) => assert!(a == b, "{k}: values differ"),
            (Value::I64(a), Value::I64(_)) => {
                assert!(k.ends_with(".num_batches_tracked") && a == &[0], "{k}")
            }
            _ => panic!("{k}: dtype differs from torchvision's"),
        }
    }
}

#[test]
fn import_names_a_missing_or_misshapen_tensor() {
    let path = fixture("model.safetensors");
    let mut tv = st_io::read(&path).unwrap();
    let mut store = ParamStore::new(DType::F32, 1);
    FeatureNet::from_config(&mut store, &fixture_config(), 2, 16, 0).unwrap();
    let before = store
        .value(store.find("encoder.stem.conv0.weight").unwrap())
        .unwrap()
        .to_vec_f32()
        .unwrap();
    let mut bad = tv.clone();
    bad.remove("layer3.0.downsample.1.running_var");
    let e = torchvision::import(&mut store, &bad, &path)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing tensor 'layer3.0.downsample.1.running_var'"),
        "{e}"
    );
    tv.get_mut("layer2.0.conv2.weight").unwrap().shape = vec![16, 16, 1, 9];
    let e = torchvision::import(&mut store, &tv, &path)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'layer2.0.conv2.weight' has shape [16, 16, 1, 9]"),
        "{e}"
    );
    let after = store
        .value(store.find("encoder.stem.conv0.weight").unwrap())
        .unwrap()
        .to_vec_f32()
        .unwrap();
    assert_eq!(before, after, "a refused import changes nothing");
}

fn pretrain_file(dir: &Path, model_name: &str, image_size: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let meta = ModelMeta {
        stage: "pretrain".into(),
        model: model_name.into(),
        image_size,
        in_channels: 3,
        proj_layers: 2,
        proj_dim: 16,
        proj_layer: 0,
        num_classes: 10,
        stem_pool_padding: simclr::nn::StemPoolPadding::Symmetric,
    };
    let mut store = ParamStore::new(DType::F32, 5);
    SimClrNet::new(&mut store, meta.clone()).unwrap();
    randomize_non_weights(&mut store, 5);
    let path = dir.join(format!("{model_name}_{image_size}.safetensors"));
    model::save(&store, &meta, &path).unwrap();
    path
}

/// `simclr export --to torchvision` of `ckpt` into `out`.
fn export(ckpt: &Path, out: &Path) -> (i32, String) {
    let s = |p: &Path| p.to_str().unwrap().to_string();
    simclr(&[
        "export",
        "--to",
        "torchvision",
        "--checkpoint",
        &s(ckpt),
        "--output",
        &s(out),
    ])
}

/// `simclr import --from torchvision` of `file` into `out`, then `more`.
fn import(file: &Path, out: &Path, more: &[&str]) -> (i32, String) {
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (file, out) = (s(file), s(out));
    let mut args = vec![
        "import",
        "--from",
        "torchvision",
        "--file",
        &file,
        "--output",
        &out,
    ];
    args.extend(more);
    simclr(&args)
}

#[test]
fn cli_export_then_import_keeps_every_encoder_tensor() {
    let dir = support::scratch::scratch("tv", "roundtrip");
    let ckpt = pretrain_file(&dir, "r50_0.25x_sk0", 40);
    let tv = dir.join("tv.safetensors");
    let back = dir.join("back.safetensors");
    let (rc, err) = export(&ckpt, &tv);
    assert_eq!(rc, 0, "{err}");
    let t = st_io::read(&tv).unwrap();
    // resnet50's state dict: 161 weights/biases + 53 BNs x 3 buffers, minus fc's 2.
    assert_eq!(t.len(), 318);
    assert_eq!(t["conv1.weight"].shape, vec![16, 3, 7, 7]);
    let scalar: Vec<usize> = vec![];
    assert_eq!(t["layer4.2.bn3.num_batches_tracked"].shape, scalar);
    assert_eq!(t["layer2.0.downsample.0.weight"].shape, vec![128, 64, 1, 1]);
    let (rc, err) = import(&tv, &back, &["--image-size", "40"]);
    assert_eq!(rc, 0, "{err}");
    let a = simclr::checkpoint::read_weights(&std::fs::read(&ckpt).unwrap(), &ckpt).unwrap();
    let b = simclr::checkpoint::read_weights(&std::fs::read(&back).unwrap(), &back).unwrap();
    let mut n = 0;
    for (k, v) in a.iter().filter(|(k, _)| k.starts_with("encoder.")) {
        assert_eq!(v.to_vec_f32().unwrap(), b[k].to_vec_f32().unwrap(), "{k}");
        n += 1;
    }
    assert_eq!(n, b.keys().filter(|k| k.starts_with("encoder.")).count());
    assert_eq!(ModelMeta::read(&back).unwrap().model, "r50_0.25x_sk0");
}

#[test]
fn cli_refuses_what_torchvision_cannot_hold() {
    let dir = support::scratch::scratch("tv", "refuse");
    for (model_name, size, says) in [
        ("r50_0.25x_sk1", 40, "sk1"),
        ("r18_0.25x_sk0", 40, "layer1.0 a projection shortcut"),
        ("r50_0.25x_sk0", 32, "small-image stem"),
    ] {
        let ckpt = pretrain_file(&dir, model_name, size);
        let out = dir.join(format!("{model_name}_{size}.tv.safetensors"));
        let (rc, err) = export(&ckpt, &out);
        assert_ne!(rc, 0, "{model_name} at {size} px was exported");
        let refused = err.contains("cannot be exported to torchvision");
        assert!(refused && err.contains(says), "{err}");
        assert!(!out.exists(), "a refused export wrote {}", out.display());
    }
    let (rc, err) = simclr(&[
        "export",
        "--to",
        "onnx",
        "--checkpoint",
        "x",
        "--output",
        "y",
    ]);
    let named = err.contains("--to onnx") && err.contains("torchvision");
    assert!(rc != 0 && named, "{err}");
    // The narrow fixture is no named architecture, and a small image size has the wrong stem.
    let out = dir.join("o.safetensors");
    let (rc, err) = import(&fixture("model.safetensors"), &out, &[]);
    assert!(rc != 0 && err.contains("[2, 1, 1, 1]"), "{err}");
    let good = pretrain_file(&dir, "r50_0.25x_sk0", 40);
    let tv = dir.join("good.tv.safetensors");
    assert_eq!(export(&good, &tv).0, 0);
    let (rc, err) = import(&tv, &out, &["--image-size", "32"]);
    assert!(rc != 0 && err.contains("--image-size 32"), "{err}");
    let (rc, err) = import(&tv, &out, &["--model", "r101_0.25x_sk0"]);
    let says = "holds a r50_0.25x_sk0 network, but --model is r101_0.25x_sk0";
    assert!(rc != 0 && err.contains(says), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_classifier_on_the_encoder_exports_as_fc_and_one_on_the_head_does_not() {
    use simclr::interop::convert::export_torchvision;
    use simclr::train::model::Classifier;
    let dir = support::scratch::scratch("tv", "fc");
    std::fs::create_dir_all(&*dir).unwrap();
    for proj_layer in [0, 1] {
        let meta = ModelMeta {
            stage: "finetune".into(),
            model: "r50_0.25x_sk0".into(),
            image_size: 40,
            in_channels: 3,
            proj_layers: 2,
            proj_dim: 16,
            proj_layer,
            num_classes: 7,
            stem_pool_padding: simclr::nn::StemPoolPadding::Symmetric,
        };
        let mut store = ParamStore::new(DType::F32, 2);
        Classifier::new(&mut store, meta.clone()).unwrap();
        let ckpt = dir.join(format!("clf{proj_layer}.safetensors"));
        model::save(&store, &meta, &ckpt).unwrap();
        let out = dir.join(format!("tv{proj_layer}.safetensors"));
        let e = export_torchvision(&ckpt, &out).unwrap();
        let t = st_io::read(&out).unwrap();
        assert_eq!(e.with_fc, proj_layer == 0);
        assert_eq!(t.contains_key("fc.weight"), proj_layer == 0);
        if proj_layer == 0 {
            assert_eq!(t["fc.weight"].shape, vec![7, 512]);
            let w = store
                .value(store.find("classifier.weight").unwrap())
                .unwrap();
            assert_eq!(t["fc.weight"].value, Value::F32(w.to_vec_f32().unwrap()));
            assert_eq!(t["fc.bias"].shape, vec![7]);
        }
        assert!(
            !t.keys().any(|k| k.starts_with("head")),
            "no projection head"
        );
    }
}
