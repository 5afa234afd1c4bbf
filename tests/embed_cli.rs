//! Issue 17, item 8: `simclr embed` writes the features of every image of a split with its
//! labels; they equal the model's own forward on the same images (pretraining network for the
//! head's output, the classifier's features for a fine-tuned checkpoint).

use std::path::{Path, PathBuf};
use std::sync::Arc;

#[path = "support/mod.rs"]
mod support;
use simclr::autograd::Tape;
use simclr::data::{open_dataset, AugmentConfig, Dataset, DatasetSpec, EvalTransform, Transform};
use simclr::interop::st_io::{self, Value};
use simclr::nn::Ctx;
use simclr::params::ParamStore;
use simclr::testing::randomize_non_weights;
use simclr::train::model::{self, Classifier, ModelMeta, SimClrNet};
use simclr::{DType, Rng, Tensor};
use support::bin::simclr;

const MODEL: &str = "r18_0.25x_sk1";
const SIZE: usize = 16;
const TEST_IMAGES: usize = 12;

fn meta(stage: &str, proj_layer: usize) -> ModelMeta {
    ModelMeta {
        stage: stage.into(),
        model: MODEL.into(),
        image_size: SIZE,
        in_channels: 3,
        proj_layers: 3,
        proj_dim: 16,
        proj_layer,
        num_classes: 10,
        stem_pool_padding: simclr::nn::StemPoolPadding::Symmetric,
    }
}

/// `simclr embed` on the synthetic test split; the features, their shape and the labels.
fn embed(ckpt: &Path, layer: usize, out: &Path) -> (Vec<usize>, Vec<f32>, Vec<i64>) {
    let layer = layer.to_string();
    let (rc, err) = simclr(&[
        "embed",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--layer",
        &layer,
        "--split",
        "test",
        "--output",
        out.to_str().unwrap(),
        "--synthetic-train",
        "8",
        "--synthetic-test",
        "12",
    ]);
    assert_eq!(rc, 0, "{err}");
    let t = st_io::read(out).unwrap();
    let (Value::F32(f), Value::I64(l)) = (&t["features"].value, &t["labels"].value) else {
        panic!("features must be f32 and labels i64");
    };
    (t["features"].shape.clone(), f.clone(), l.clone())
}

/// The split the command reads, and its images through the evaluation transform.
fn test_split() -> (Arc<dyn Dataset>, Tensor) {
    let spec = DatasetSpec {
        synthetic_train: 8,
        synthetic_test: TEST_IMAGES,
        image_size: SIZE,
        ..Default::default()
    };
    let ds = open_dataset(&spec).unwrap().test;
    let t = EvalTransform::new(AugmentConfig::for_size(SIZE)).unwrap();
    let mut x = vec![0f32; TEST_IMAGES * SIZE * SIZE * 3];
    for (i, chunk) in x.chunks_mut(SIZE * SIZE * 3).enumerate() {
        t.apply(&ds.image(i).unwrap(), &mut Rng::new(0), chunk)
            .unwrap();
    }
    (
        ds,
        Tensor::from_vec(x, &[TEST_IMAGES, SIZE, SIZE, 3]).unwrap(),
    )
}

fn saved(dir: &Path, m: &ModelMeta, build: impl Fn(&mut ParamStore)) -> (PathBuf, ParamStore) {
    std::fs::create_dir_all(dir).unwrap();
    let mut store = ParamStore::new(DType::F32, 3);
    build(&mut store);
    randomize_non_weights(&mut store, 3);
    let path = dir.join(format!("{}.safetensors", m.stage));
    model::save(&store, m, &path).unwrap();
    (path, store)
}

fn assert_same(what: &str, got: &[f32], want: &Tensor) {
    let want = want.to_vec_f32().unwrap();
    assert_eq!(got.len(), want.len(), "{what}: length");
    // The same kernels on the same inputs in the same order: equal bit for bit.
    assert!(
        got == want.as_slice(),
        "{what}: features differ from the model's forward"
    );
}

#[test]
fn embed_of_a_pretraining_checkpoint_is_its_encoder_and_head() {
    let dir = support::scratch::scratch("embed", "pretrain");
    let m = meta("pretrain", 0);
    let (ckpt, mut store) = saved(&dir, &m, |s| {
        SimClrNet::new(s, m.clone()).unwrap();
    });
    let net = SimClrNet::new(&mut ParamStore::meta(), m.clone()).unwrap();
    let (ds, x) = test_split();
    let labels: Vec<i64> = (0..ds.len()).map(|i| ds.label(i) as i64).collect();
    let mut tape = Tape::inference();
    let xv = tape.constant(x);
    let mut ctx = Ctx::new(&mut tape, &mut store, false);
    let h = net.encoder.forward(&mut ctx, &xv).unwrap();
    let outs = net.head.forward_all(&mut ctx, &h).unwrap();
    let z = net.project(&mut ctx, &xv).unwrap();
    for layer in [0, 1, 3] {
        let (shape, f, l) = embed(&ckpt, layer, &dir.join(format!("f{layer}.safetensors")));
        let dim = [128, 128, 0, 16][layer];
        assert_eq!(shape, vec![TEST_IMAGES, dim], "layer {layer}");
        assert_eq!(l, labels, "labels in dataset order");
        assert_same(&format!("layer {layer}"), &f, outs[layer].value());
    }
    // Layer 3 is the projection the contrastive loss sees.
    let (_, f, _) = embed(&ckpt, 3, &dir.join("z.safetensors"));
    assert_same("projection", &f, z.value());
    let leftovers: Vec<_> = std::fs::read_dir(&*dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn embed_of_a_classifier_gives_the_features_its_fc_reads() {
    let dir = support::scratch::scratch("embed", "classifier");
    let m = meta("finetune", 1);
    let (ckpt, mut store) = saved(&dir, &m, |s| {
        Classifier::new(s, m.clone()).unwrap();
    });
    let clf = Classifier::new(&mut ParamStore::meta(), m.clone()).unwrap();
    let (_, x) = test_split();
    let mut tape = Tape::inference();
    let xv = tape.constant(x);
    let want = clf
        .features(&mut Ctx::new(&mut tape, &mut store, false), &xv)
        .unwrap();
    let (shape, f, _) = embed(&ckpt, 1, &dir.join("f.safetensors"));
    assert_eq!(shape, vec![TEST_IMAGES, 128]);
    assert_same("classifier features", &f, want.value());
    // Its head stops at layer 1: layer 2 is refused, and nothing is written.
    let out = dir.join("f2.safetensors");
    let (rc, err) = simclr(&[
        "embed",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--layer",
        "2",
        "--output",
        out.to_str().unwrap(),
        "--synthetic-test",
        "12",
    ]);
    assert!(
        rc != 0 && err.contains("--layer 2") && err.contains("1..=1"),
        "{err}"
    );
    assert!(!out.exists());
    let (rc, err) = simclr(&[
        "embed",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--split",
        "val",
        "--output",
        out.to_str().unwrap(),
        "--synthetic-test",
        "12",
    ]);
    assert!(
        rc != 0 && err.contains("--split val") && err.contains("train or test"),
        "{err}"
    );
    assert!(!out.exists());
}
