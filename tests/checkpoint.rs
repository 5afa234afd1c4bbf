//! Checkpoints: round trip of parameters and BN buffers under module-path names, clear errors for
//! missing / extra / mis-shaped tensors, missing or corrupt files, and atomic writes.

use simclr::autograd::Tape;
use simclr::checkpoint;
use simclr::nn::{Ctx, ResNet, ResNetConfig};
use simclr::params::{Init, ParamKind, ParamStore};
use simclr::{DType, Rng, Tensor};
use std::path::{Path, PathBuf};

/// A scratch directory, removed when the test ends (pass or fail).
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!("simclr-ckpt-{}-{nanos}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

fn small(seed: u64) -> (ParamStore, ResNet) {
    let cfg = ResNetConfig::parse("r18_1x_sk1").unwrap().for_image_size(8);
    let mut store = ParamStore::new(DType::F32, seed);
    let net = ResNet::new(&mut store, "encoder", &cfg).unwrap();
    (store, net)
}

#[test]
fn round_trip_restores_parameters_and_running_statistics() {
    let dir = scratch("roundtrip");
    let (mut a, net) = small(1);
    // One train-mode forward moves the running statistics away from their initial values.
    let x = Tensor::randn(&[2, 8, 8, 3], 1.0, DType::F32, &mut Rng::new(5)).unwrap();
    let mut tape = Tape::inference();
    let xv = tape.constant(x);
    net.forward(&mut Ctx::new(&mut tape, &mut a, true), &xv)
        .unwrap();
    let path = dir.join("model.safetensors");
    checkpoint::save(&a, &path, None).unwrap();
    let (mut b, _) = small(2);
    checkpoint::load(&mut b, &path).unwrap();
    for id in a.ids() {
        assert_eq!(
            a.value(id).unwrap().to_vec_f64().unwrap(),
            b.value(id).unwrap().to_vec_f64().unwrap(),
            "{}",
            a.name(id)
        );
    }
    let moved = a.find("encoder.stem.bn0.running_mean").unwrap();
    assert!(a
        .value(moved)
        .unwrap()
        .to_vec_f64()
        .unwrap()
        .iter()
        .any(|&v| v != 0.0));
    assert!(a.find("encoder.layer1.0.conv1.weight").is_some());
    assert!(a.find("encoder.layer1.0.shortcut.conv.weight").is_some());
    // Only the checkpoint itself is left in the directory: no temporary files.
    let names: Vec<_> = std::fs::read_dir(&*dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

fn one_tensor_store(name: &str, shape: &[usize]) -> ParamStore {
    let mut s = ParamStore::new(DType::F32, 0);
    s.add(name, shape, ParamKind::Weight, Init::Ones).unwrap();
    s
}

#[test]
fn mismatches_name_the_tensor_and_both_shapes() {
    let dir = scratch("mismatch");
    let path = dir.join("a.safetensors");
    let mut two = one_tensor_store("w", &[2, 3]);
    two.add("extra.bias", &[3], ParamKind::Bias, Init::Zeros)
        .unwrap();
    checkpoint::save(&two, &path, None).unwrap();

    let e = checkpoint::load(&mut one_tensor_store("w", &[2, 3]), &path)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unexpected tensor 'extra.bias'") && e.contains("[3]"),
        "{e}"
    );

    let mut bigger = one_tensor_store("w", &[2, 3]);
    bigger
        .add("missing.weight", &[4], ParamKind::Weight, Init::Zeros)
        .unwrap();
    bigger
        .add("extra.bias", &[3], ParamKind::Bias, Init::Zeros)
        .unwrap();
    let e = checkpoint::load(&mut bigger, &path)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing tensor 'missing.weight'") && e.contains("[4]"),
        "{e}"
    );

    let mut shaped = one_tensor_store("w", &[3, 2]);
    shaped
        .add("extra.bias", &[3], ParamKind::Bias, Init::Zeros)
        .unwrap();
    let e = checkpoint::load(&mut shaped, &path)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'w'") && e.contains("[2, 3]") && e.contains("[3, 2]"),
        "{e}"
    );
    assert!(e.contains(&path.display().to_string()), "{e}");
}

#[test]
fn missing_and_corrupt_files_are_clear_errors() {
    let dir = scratch("corrupt");
    let missing = dir.join("nope.safetensors");
    let e = checkpoint::load(&mut one_tensor_store("w", &[1]), &missing)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("nope.safetensors") && e.contains("no such file"),
        "{e}"
    );

    let path = dir.join("t.safetensors");
    checkpoint::save(&one_tensor_store("w", &[64]), &path, None).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = checkpoint::load(&mut one_tensor_store("w", &[64]), &path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a valid safetensors file"), "{e}");
}

#[test]
fn a_failed_write_leaves_the_old_file_and_no_temporary() {
    let dir = scratch("atomic");
    // The target is a directory: the final rename fails after the temporary was written.
    let target = dir.join("ckpt.safetensors");
    std::fs::create_dir(&target).unwrap();
    assert!(checkpoint::save(&one_tensor_store("w", &[4]), &target, None).is_err());
    assert!(target.is_dir());
    let names: Vec<_> = std::fs::read_dir(&*dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "temporary left behind: {names:?}");
}
