//! Issue 17, item 10: the official SimCLRv2 release format. Tiny checkpoints written by
//! TensorFlow with the official variable names (tests/fixtures/simclr_tf/generate.py, which
//! also computes the features with a reference forward of the official architecture) are read
//! by our own tensor-bundle reader and give the same features, online and EMA weights.

use std::path::{Path, PathBuf};

#[path = "support/mod.rs"]
mod support;
use simclr::interop::embed::FeatureNet;
use simclr::interop::simclr_tf::{self, Plan};
use simclr::interop::simclr_tf2;
use simclr::interop::tf_checkpoint::Bundle;
use simclr::nn::{ActivationPolicy, BlockKind, ResNetConfig, StemPoolPadding};
use simclr::params::ParamStore;
use simclr::testing::{assert_close, load_fixture, tolerance};
use simclr::DType;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/simclr_tf")
        .join(name)
}

fn config(case: &str) -> ResNetConfig {
    let sk = case.starts_with("sk1");
    ResNetConfig {
        depth: 0,
        block: BlockKind::Bottleneck,
        layers: if sk { [1, 1, 1, 1] } else { [2, 1, 1, 1] },
        width: 1.0,
        sk,
        base: 4,
        small_stem: case.ends_with("cifar"),
        in_channels: 3,
        sk_ratio: 0.0625,
        sk_min_dim: 32,
        // What `simclr import --from simclr-tf` records: the official stem pool is TF "SAME".
        stem_pool_padding: StemPoolPadding::SameTf,
    }
}

/// Which fixture checkpoint of a case, and which weights in it.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// `<case>.ckpt`: TF1 names, online or EMA weights.
    Tf1 { ema: bool },
    /// `<case>_tf2.ckpt`: the same online weights under TF2 object-graph keys.
    Tf2,
}

/// Our network for `case` with every tensor read from the fixture checkpoint.
fn imported(case: &str, src: Source, layer: usize) -> (FeatureNet, ParamStore, Plan) {
    let file = match src {
        Source::Tf1 { .. } => format!("{case}.ckpt"),
        Source::Tf2 => format!("{case}_tf2.ckpt"),
    };
    let bundle = Bundle::open(&fixture(&file)).unwrap();
    let mut store = ParamStore::new(DType::F32, 9);
    let net = FeatureNet::from_config(&mut store, &config(case), 3, 16, layer).unwrap();
    let plan = match src {
        Source::Tf1 { ema } => [
            simclr_tf::encoder_plan(&net.encoder, ema),
            simclr_tf::head_plan(&net.head, ema),
        ]
        .concat(),
        Source::Tf2 => [
            simclr_tf2::encoder_plan(&net.encoder),
            simclr_tf2::head_plan(&net.head),
        ]
        .concat(),
    };
    simclr_tf::load(&mut store, &bundle, &plan, Path::new(case)).unwrap();
    (net, store, plan)
}

fn check_case(case: &str, sources: &[Source]) {
    let want = load_fixture(&fixture("expected.safetensors"));
    let images = want[&format!("{case}/images_nhwc")]
        .to_dtype(DType::F32)
        .unwrap();
    // Longest reduction: the SK conv's 3x3 over 32 channels or the head's 128-wide dense;
    // stem, 5 blocks of up to 5 layers, head.
    let tol = tolerance(DType::F32, 9 * 32, 30);
    for &src in sources {
        let tag = match src {
            Source::Tf1 { ema: true } => "ema_",
            _ => "",
        };
        for (layer, key) in [(0, "encoder"), (1, "head1"), (3, "head3")] {
            let (net, mut store, plan) = imported(case, src, layer);
            // Every tensor of the network comes from the checkpoint.
            assert_eq!(plan.len(), store.len(), "{case}");
            let got = net
                .embed(&mut store, images.clone(), ActivationPolicy::default())
                .unwrap();
            let what = format!("{case} {src:?} {key}");
            let want = &want[&format!("{case}/{tag}{key}")];
            assert_close(&what, &got.to_dtype(DType::F64).unwrap(), want, tol);
        }
    }
}

const TF1: [Source; 2] = [Source::Tf1 { ema: false }, Source::Tf1 { ema: true }];

#[test]
fn sk1_with_the_resnet_d_stem_matches_the_official_forward() {
    check_case("sk1_imagenet", &TF1);
}

/// The stem pool sees 18x18 (TF "SAME" pads only below and right) and the strided ResNet-D
/// shortcuts 9, 5 and 3 (the appended zeros count in the average).
#[test]
fn sk1_at_even_stem_and_odd_shortcut_sizes_matches_the_official_forward() {
    check_case("sk1_even", &TF1);
}

#[test]
fn sk0_with_the_cifar_stem_matches_the_official_forward() {
    check_case("sk0_cifar", &TF1);
}

/// The TF2 release: object-based keys (the tf2 code's Keras attribute paths), the same
/// forward. sk1 covers the ResNet-D stem, shortcuts and SK convs; sk0 the CIFAR stem, plain
/// 3x3 convs and strided 1x1 shortcuts.
#[test]
fn tf2_object_based_checkpoints_match_the_official_forward() {
    for case in ["sk1_even", "sk0_cifar"] {
        let b = Bundle::open(&fixture(&format!("{case}_tf2.ckpt"))).unwrap();
        assert!(simclr_tf2::is_object_based(&b));
        assert!(b.entries().contains_key("_CHECKPOINTABLE_OBJECT_GRAPH"));
        check_case(case, &[Source::Tf2]);
    }
    assert!(!simclr_tf2::is_object_based(
        &Bundle::open(&fixture("sk0_cifar.ckpt")).unwrap()
    ));
}

#[test]
fn the_bundle_lists_every_tensor_with_its_shape_and_dtype() {
    let b = Bundle::open(&fixture("sk0_cifar.ckpt.index")).unwrap();
    let e = b.entries();
    assert_eq!(e.len(), 234);
    assert_eq!(e["base_model/conv2d/kernel"].shape, vec![3, 3, 3, 4]);
    assert_eq!(e["head_contrastive/nl_2/dense/kernel"].shape, vec![128, 16]);
    assert!(!e.contains_key("head_contrastive/nl_2/batch_normalization/beta"));
    assert_eq!(e["global_step"].dtype, 9, "int64");
    let err = b.read_f32("global_step").unwrap_err().to_string();
    assert!(err.contains("dtype 9"), "{err}");
    let (convs, heads) = simclr_tf::count(&b, false);
    let (net, _, plan) = imported("sk0_cifar", Source::Tf1 { ema: false }, 3);
    let ours = plan
        .iter()
        .filter(|p| p.1.ends_with("/kernel") && p.1.contains("conv2d"))
        .count();
    assert_eq!((convs, heads), (ours, net.head.layers.len()));
}

#[test]
fn corrupt_or_missing_files_are_named() {
    let dir = support::scratch::scratch("tf", "corrupt");
    std::fs::create_dir_all(&*dir).unwrap();
    let src = fixture("sk0_cifar.ckpt");
    let prefix = dir.join("m.ckpt");
    let copy = |suffix: &str| {
        let from = format!("{}{suffix}", src.display());
        std::fs::copy(from, format!("{}{suffix}", prefix.display())).unwrap();
    };
    copy(".index");
    let e = Bundle::open(&dir.join("absent.ckpt"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("absent.ckpt.index") && e.contains("no such file"),
        "{e}"
    );
    // A flipped byte in the index fails a block's CRC.
    let idx = PathBuf::from(format!("{}.index", prefix.display()));
    let mut bytes = std::fs::read(&idx).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&idx, &bytes).unwrap();
    let e = Bundle::open(&prefix).err().unwrap().to_string();
    assert!(e.contains("CRC32C"), "{e}");
    // A flipped byte in the data fails the tensor's CRC.
    copy(".index");
    copy(".data-00000-of-00001");
    let data = PathBuf::from(format!("{}.data-00000-of-00001", prefix.display()));
    let b = Bundle::open(&prefix).unwrap();
    let off = b.entries()["base_model/conv2d_3/kernel"].offset as usize;
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[off + 5] ^= 0x01;
    std::fs::write(&data, &bytes).unwrap();
    let e = b
        .read_f32("base_model/conv2d_3/kernel")
        .unwrap_err()
        .to_string();
    assert!(e.contains("conv2d_3") && e.contains("CRC32C"), "{e}");
    // Not an SSTable at all.
    std::fs::write(&idx, vec![7u8; 100]).unwrap();
    let e = Bundle::open(&prefix).err().unwrap().to_string();
    assert!(e.contains("not a TensorFlow checkpoint index"), "{e}");
}

#[test]
fn cli_import_refuses_a_checkpoint_of_another_architecture() {
    let dir = support::scratch::scratch("tf", "cli");
    std::fs::create_dir_all(&*dir).unwrap();
    let out = dir.join("o.safetensors");
    let o = out.to_str().unwrap();
    let ckpt = fixture("sk0_cifar.ckpt");
    let f = ckpt.to_str().unwrap();
    let (rc, err) =
        support::bin::simclr(&["import", "--from", "simclr-tf", "--file", f, "--output", o]);
    assert!(rc != 0 && err.contains("--model is needed"), "{err}");
    let args = [
        "import",
        "--from",
        "simclr-tf",
        "--file",
        f,
        "--output",
        o,
        "--model",
    ];
    let (rc, err) = support::bin::simclr(&[&args[..], &["r50_1x_sk0"]].concat());
    assert!(
        rc != 0 && err.contains("holds 20 convolutions, but a r50_1x_sk0 has 53"),
        "{err}"
    );
    let (rc, err) = support::bin::simclr(&[&args[..], &["r18_1x_sk0", "--ema"]].concat());
    assert!(rc != 0 && err.contains("but a r18_1x_sk0 has"), "{err}");
    assert!(!out.exists());
}

#[test]
fn snappy_blocks_written_by_a_real_compressor_decompress() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/snappy");
    let raw = std::fs::read(dir.join("sample.bin")).unwrap();
    let packed = std::fs::read(dir.join("sample.snappy")).unwrap();
    assert!(
        packed.len() < raw.len(),
        "the sample has copies, not only literals"
    );
    let got = simclr::interop::tf_checkpoint::snappy::decompress(&packed);
    assert!(
        got.as_deref() == Some(&raw[..]),
        "decompressed bytes differ"
    );
    let truncated = &packed[..packed.len() - 3];
    assert!(simclr::interop::tf_checkpoint::snappy::decompress(truncated).is_none());
}

/// A named architecture's tensors in TF layout under the official names (`ema`: scaled by 0.5,
/// so the two copies differ), written as a release-style checkpoint in `dir/<model>/`. `tf2`:
/// the TF2 release's object-graph keys instead (online weights only, as that release has).
fn release_checkpoint(dir: &Path, model_name: &str, tf2: bool) -> (PathBuf, ParamStore) {
    use simclr::interop::simclr_tf::Layout;
    let meta = simclr::train::model::ModelMeta {
        stage: "pretrain".into(),
        model: model_name.into(),
        image_size: 32,
        in_channels: 3,
        proj_layers: 3,
        proj_dim: 128,
        proj_layer: 0,
        num_classes: 0,
        stem_pool_padding: StemPoolPadding::SameTf,
    };
    let mut store = ParamStore::new(DType::F32, 4);
    let net = simclr::train::model::SimClrNet::new(&mut store, meta).unwrap();
    simclr::testing::randomize_non_weights(&mut store, 4);
    let mut tensors = Vec::new();
    let copies: &[(bool, f32)] = if tf2 {
        &[(false, 1.0)]
    } else {
        &[(false, 1.0), (true, 0.5)]
    };
    for &(ema, scale) in copies {
        let plan = if tf2 {
            [
                simclr_tf2::encoder_plan(&net.encoder),
                simclr_tf2::head_plan(&net.head),
            ]
            .concat()
        } else {
            [
                simclr_tf::encoder_plan(&net.encoder, ema),
                simclr_tf::head_plan(&net.head, ema),
            ]
            .concat()
        };
        for (ours, tf, layout) in plan {
            let t = store.value(store.find(&ours).unwrap()).unwrap();
            let v: Vec<f32> = t.to_vec_f32().unwrap().iter().map(|x| x * scale).collect();
            let s = t.shape().to_vec();
            let (shape, v) = match layout {
                Layout::ConvKernel => {
                    let hwio = simclr::interop::torchvision::permute4(
                        &v,
                        [s[0], s[1], s[2], s[3]],
                        [1, 2, 3, 0],
                    );
                    (vec![s[1], s[2], s[3], s[0]], hwio)
                }
                Layout::DenseKernel => {
                    let mut t = vec![0f32; v.len()];
                    for (i, x) in v.iter().enumerate() {
                        t[(i % s[1]) * s[0] + i / s[1]] = *x;
                    }
                    (vec![s[1], s[0]], t)
                }
                Layout::Same => (s, v),
            };
            tensors.push((tf, shape, v));
        }
    }
    // The supervised head: 10 classes on the 512-wide representation.
    let kernel: Vec<f32> = (0..512 * 10)
        .map(|i| (i % 17) as f32 * 0.01 - 0.08)
        .collect();
    let bias: Vec<f32> = (0..10).map(|i| i as f32 * 0.1).collect();
    let sup = |leaf: &str| match tf2 {
        true => simclr_tf2::key(&format!("{}/{leaf}", simclr_tf2::SUPERVISED)),
        false => format!("head_supervised/linear_layer/dense/{leaf}"),
    };
    tensors.push((sup("kernel"), vec![512, 10], kernel));
    tensors.push((sup("bias"), vec![10], bias));
    let d = dir.join(model_name);
    std::fs::create_dir_all(&d).unwrap();
    let prefix = d.join("model.ckpt-250228");
    support::tf_bundle::write(&prefix, &tensors);
    (prefix, store)
}

#[test]
fn cli_imports_a_release_checkpoint_online_and_ema() {
    let dir = support::scratch::scratch("tf", "release");
    let (prefix, store) = release_checkpoint(&dir, "r50_0.25x_sk1", false);
    for (ema, scale) in [(false, 1.0f32), (true, 0.5)] {
        let out = dir.join(format!("ours_{ema}.safetensors"));
        let mut args = vec!["import", "--from", "simclr-tf", "--image-size", "32"];
        let (p, o) = (prefix.to_str().unwrap(), out.to_str().unwrap());
        args.extend(["--file", p, "--output", o]);
        if ema {
            args.push("--ema");
        }
        let (rc, err) = support::bin::simclr(&args);
        assert_eq!(rc, 0, "{err}");
        let meta = simclr::train::model::ModelMeta::read(&out).unwrap();
        assert_eq!(
            (meta.model.as_str(), meta.proj_layers, meta.proj_dim),
            ("r50_0.25x_sk1", 3, 128)
        );
        // The official stem max pool is TF "SAME"; the checkpoint says so.
        assert_eq!(meta.stem_pool_padding, StemPoolPadding::SameTf);
        let got = simclr::checkpoint::read_weights(&std::fs::read(&out).unwrap(), &out).unwrap();
        assert_eq!(got.len(), store.len());
        for id in store.ids() {
            let name = store.name(id);
            let want: Vec<f32> = store
                .value(id)
                .unwrap()
                .to_vec_f32()
                .unwrap()
                .iter()
                .map(|x| x * scale)
                .collect();
            assert!(
                got[name].to_vec_f32().unwrap() == want,
                "{name} (ema {ema})"
            );
        }
    }
}

#[test]
fn cli_imports_the_supervised_head_as_a_classifier_that_eval_reads() {
    let dir = support::scratch::scratch("tf", "classifier");
    let (prefix, store) = release_checkpoint(&dir, "r50_0.25x_sk1", false);
    let out = dir.join("clf.safetensors");
    let (p, o) = (prefix.to_str().unwrap(), out.to_str().unwrap());
    let args = [
        "import",
        "--from",
        "simclr-tf",
        "--image-size",
        "32",
        "--file",
        p,
        "--output",
        o,
    ];
    let (rc, err) = support::bin::simclr(&[&args[..], &["--classifier-layer", "1"]].concat());
    assert_eq!(rc, 0, "{err}");
    let meta = simclr::train::model::ModelMeta::read(&out).unwrap();
    assert_eq!(
        (meta.stage.as_str(), meta.proj_layer, meta.num_classes),
        ("finetune", 1, 10)
    );
    let got = simclr::checkpoint::read_weights(&std::fs::read(&out).unwrap(), &out).unwrap();
    let w = got["classifier.weight"].to_vec_f32().unwrap();
    assert_eq!(got["classifier.weight"].shape(), &[10, 512]);
    // Ours is [out, in]: row c, column i holds TF's kernel[i][c].
    assert_eq!(w[3 * 512 + 7], ((7 * 10 + 3) % 17) as f32 * 0.01 - 0.08);
    let enc = "encoder.layer4.2.sk.fc2.weight";
    let want = store
        .value(store.find(enc).unwrap())
        .unwrap()
        .to_vec_f32()
        .unwrap();
    assert!(got[enc].to_vec_f32().unwrap() == want);
    assert!(got.contains_key("head.0.linear.weight") && !got.contains_key("head.1.linear.weight"));
    let run = dir.join("run");
    let (rc, err) = support::bin::simclr(&[
        "eval",
        "--checkpoint",
        o,
        "--image-size",
        "32",
        "--synthetic-train",
        "20",
        "--synthetic-test",
        "10",
        "--device",
        "cpu",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert_eq!(rc, 0, "{err}");
    // No EMA copy of the supervised head in the file: --ema takes the online one.
    let ema = ["--classifier-layer", "0", "--ema"];
    let (rc, err) = support::bin::simclr(&[&args[..], &ema].concat());
    assert_eq!(rc, 0, "{err}");
    let got = simclr::checkpoint::read_weights(&std::fs::read(&out).unwrap(), &out).unwrap();
    assert!(got["classifier.weight"].to_vec_f32().unwrap() == w);
    assert!(
        !got.contains_key("head.0.linear.weight"),
        "layer 0 reads the encoder"
    );
    let (rc, err) = support::bin::simclr(&[&args[..], &["--classifier-layer", "4"]].concat());
    assert!(rc != 0 && err.contains("--classifier-layer 4"), "{err}");
}

#[test]
fn cli_imports_a_tf2_release_checkpoint_told_apart_by_its_keys() {
    let dir = support::scratch::scratch("tf", "release_tf2");
    let (prefix, store) = release_checkpoint(&dir, "r50_0.25x_sk1", true);
    let (p, out) = (prefix.to_str().unwrap(), dir.join("ours.safetensors"));
    let o = out.to_str().unwrap();
    for from in ["simclr-tf", "simclr-tf2"] {
        let args = ["import", "--from", from, "--image-size", "32", "--file", p];
        let (rc, err) = support::bin::simclr(&[&args[..], &["--output", o]].concat());
        assert_eq!(rc, 0, "{err}");
        let meta = simclr::train::model::ModelMeta::read(&out).unwrap();
        assert_eq!(meta.stem_pool_padding, StemPoolPadding::SameTf);
        assert_eq!((meta.proj_layers, meta.proj_dim), (3, 128));
        let got = simclr::checkpoint::read_weights(&std::fs::read(&out).unwrap(), &out).unwrap();
        assert_eq!(got.len(), store.len());
        for id in store.ids() {
            let want = store.value(id).unwrap().to_vec_f32().unwrap();
            let name = store.name(id);
            assert!(got[name].to_vec_f32().unwrap() == want, "{name}");
        }
        let clf = ["--classifier-layer", "0", "--output", o];
        let (rc, err) = support::bin::simclr(&[&args[..], &clf].concat());
        assert_eq!(rc, 0, "{err}");
        let got = simclr::checkpoint::read_weights(&std::fs::read(&out).unwrap(), &out).unwrap();
        assert_eq!(got["classifier.weight"].shape(), &[10, 512]);
    }
    // No EMA copy in the TF2 release; and a TF2 file read as TF1 (or the reverse) is named.
    let args = ["import", "--from", "simclr-tf", "--file", p, "--output", o];
    let (rc, err) = support::bin::simclr(&[&args[..], &["--ema"]].concat());
    assert!(
        rc != 0 && err.contains("--ema") && err.contains("no EMA"),
        "{err}"
    );
    let (tf1, _) = release_checkpoint(&dir.join("tf1"), "r50_0.25x_sk1", false);
    let t = tf1.to_str().unwrap();
    let args = ["import", "--from", "simclr-tf2", "--file", t, "--output", o];
    let (rc, err) = support::bin::simclr(&args);
    assert!(rc != 0 && err.contains("--from simclr-tf)"), "{err}");
}
