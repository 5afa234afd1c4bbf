use super::assert_data_err;
use crate::data::{cifar, idx, open_dataset, Dataset, DatasetSpec};
use crate::testing::fresh_seed;
use crate::{Error, Rng};
use std::io::Write;
use std::path::Path;

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn write(path: &Path, bytes: &[u8], gz: bool) {
    if gz {
        let f = std::fs::File::create(path).unwrap();
        let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap();
    } else {
        std::fs::write(path, bytes).unwrap();
    }
}

/// Writes a random IDX split; returns its pixels and labels.
fn write_idx_split(
    dir: &Path,
    prefix: &str,
    n: usize,
    gz: bool,
    rng: &mut Rng,
) -> (Vec<u8>, Vec<u8>) {
    let (r, c) = (28u32, 28u32);
    let px: Vec<u8> = (0..n * 784).map(|_| rng.below(256) as u8).collect();
    let lb: Vec<u8> = (0..n).map(|_| rng.below(10) as u8).collect();
    let sfx = if gz { ".gz" } else { "" };
    write(
        &dir.join(format!("{prefix}-images-idx3-ubyte{sfx}")),
        &idx_bytes(&[n as u32, r, c], &px),
        gz,
    );
    write(
        &dir.join(format!("{prefix}-labels-idx1-ubyte{sfx}")),
        &idx_bytes(&[n as u32], &lb),
        gz,
    );
    (px, lb)
}

#[test]
fn idx_reads_plain_and_gzipped_splits() {
    let mut rng = Rng::new(fresh_seed("idx_reads_plain_and_gzipped_splits"));
    let dir = tempfile::tempdir().unwrap();
    let n_train = 5 + rng.below(40);
    let (px, lb) = write_idx_split(dir.path(), "train", n_train, true, &mut rng);
    let (tpx, tlb) = write_idx_split(dir.path(), "t10k", 7, false, &mut rng);
    let spec = DatasetSpec {
        name: "fashion-mnist".into(),
        data_dir: Some(dir.path().into()),
        ..Default::default()
    };
    let s = open_dataset(&spec).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (n_train, 7));
    assert_eq!((s.train.channels(), s.train.num_classes()), (1, 10));
    assert_eq!(s.train.class_names()[9], "Ankle boot");
    for (ds, px, lb) in [(&s.train, &px, &lb), (&s.test, &tpx, &tlb)] {
        for i in 0..ds.len() {
            let im = ds.image(i).unwrap();
            assert_eq!((im.height, im.width, im.channels), (28, 28, 1));
            assert_eq!(&im.data[..], &px[i * 784..(i + 1) * 784]);
            assert_eq!(ds.label(i), lb[i] as usize);
        }
    }
}

#[test]
fn idx_rejects_bad_files_naming_them() {
    let mut rng = Rng::new(fresh_seed("idx_rejects_bad_files_naming_them"));
    let p = Path::new("x-images-idx3-ubyte");
    let good = idx_bytes(&[3, 4, 5], &[0u8; 60]);
    assert!(idx::parse_idx(&good, p).is_ok());
    let mut magic = good.clone();
    magic[rng.below(2)] = 1 + rng.below(255) as u8;
    assert_data_err(idx::parse_idx(&magic, p), "x-images-idx3-ubyte", "magic");
    let cut = rng.below(good.len());
    assert_data_err(
        idx::parse_idx(&good[..cut], p),
        "x-images-idx3-ubyte",
        "truncated",
    );
    // Files on disk: a label beyond the ten classes, a corrupt gzip, a missing label file.
    let dir = tempfile::tempdir().unwrap();
    write_idx_split(dir.path(), "train", 4, false, &mut rng);
    let lp = dir.path().join("train-labels-idx1-ubyte");
    let mut lb = std::fs::read(&lp).unwrap();
    let k = 8 + rng.below(4);
    lb[k] = 10 + rng.below(246) as u8;
    std::fs::write(&lp, &lb).unwrap();
    let r = idx::load_idx_split(dir.path(), "train", &idx::FASHION_MNIST_CLASSES);
    assert_data_err(r, "train-labels-idx1-ubyte", "out of range");
    let gz = dir.path().join("t10k-images-idx3-ubyte.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
    assert_data_err(idx::read_maybe_gz(&gz), "t10k-images-idx3-ubyte.gz", "gzip");
    let r = idx::load_idx_split(dir.path(), "t10k", &idx::FASHION_MNIST_CLASSES);
    assert_data_err(r, "t10k-images-idx3-ubyte.gz", "gzip");
}

#[test]
fn debian_fashion_mnist_when_installed() {
    if !Path::new(idx::DEBIAN_FASHION_MNIST).is_dir() {
        eprintln!("{} absent: skipped", idx::DEBIAN_FASHION_MNIST);
        return;
    }
    let s = open_dataset(&DatasetSpec {
        name: "fashion-mnist".into(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!((s.train.len(), s.test.len()), (60_000, 10_000));
    let mut counts = [0usize; 10];
    (0..s.test.len()).for_each(|i| counts[s.test.label(i)] += 1);
    assert_eq!(counts, [1000; 10]);
}

/// Random CIFAR records: (file bytes, HWC pixels, fine labels, coarse labels).
fn cifar_records(
    n: usize,
    label_bytes: usize,
    rng: &mut Rng,
) -> (Vec<u8>, Vec<u8>, Vec<usize>, Vec<usize>) {
    let (mut bytes, mut hwc, mut fine, mut coarse) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let planes: Vec<u8> = (0..3072).map(|_| rng.below(256) as u8).collect();
        if label_bytes == 2 {
            coarse.push(rng.below(20));
            bytes.push(*coarse.last().unwrap() as u8);
        }
        fine.push(rng.below(if label_bytes == 2 { 100 } else { 10 }));
        bytes.push(*fine.last().unwrap() as u8);
        bytes.extend_from_slice(&planes);
        for p in 0..1024 {
            hwc.extend((0..3).map(|c| planes[c * 1024 + p]));
        }
    }
    (bytes, hwc, fine, coarse)
}

#[test]
fn cifar10_reads_batches_as_hwc() {
    let mut rng = Rng::new(fresh_seed("cifar10_reads_batches_as_hwc"));
    let dir = tempfile::tempdir().unwrap();
    let (mut all_px, mut all_lb) = (Vec::new(), Vec::new());
    for i in 1..=5 {
        let (b, px, lb, _) = cifar_records(1 + rng.below(4), 1, &mut rng);
        std::fs::write(dir.path().join(format!("data_batch_{i}.bin")), b).unwrap();
        all_px.extend(px);
        all_lb.extend(lb);
    }
    let (b, tpx, tlb, _) = cifar_records(3, 1, &mut rng);
    std::fs::write(dir.path().join("test_batch.bin"), b).unwrap();
    let (train, test) = cifar::load_cifar10(dir.path()).unwrap();
    assert_eq!(train.len(), all_lb.len());
    assert_eq!(train.class_names()[0], "airplane");
    for (ds, px, lb) in [(&train, &all_px, &all_lb), (&test, &tpx, &tlb)] {
        for i in 0..ds.len() {
            assert_eq!(
                &ds.image(i).unwrap().data[..],
                &px[i * 3072..(i + 1) * 3072]
            );
            assert_eq!(ds.label(i), lb[i]);
        }
    }
}

#[test]
fn cifar100_reads_fine_and_coarse_labels_from_subfolder() {
    let mut rng = Rng::new(fresh_seed("cifar100_reads_fine_and_coarse_labels"));
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cifar-100-binary");
    std::fs::create_dir(&dir).unwrap();
    let (b, px, fine, coarse) = cifar_records(2 + rng.below(6), 2, &mut rng);
    std::fs::write(dir.join("train.bin"), &b).unwrap();
    std::fs::write(dir.join("test.bin"), &b).unwrap();
    assert_eq!(cifar::CIFAR100_CLASSES.len(), 100);
    let (train, _) = cifar::load_cifar100(root.path()).unwrap();
    assert_eq!(train.labels(), &fine[..]);
    assert_eq!(train.shape(), (32, 32, 3));
    let rec = cifar::parse_records(&b, &dir.join("train.bin"), 2, 100, 20).unwrap();
    assert_eq!((rec.coarse, rec.pixels), (coarse, px));
}

#[test]
fn cifar_rejects_bad_files_naming_them() {
    let mut rng = Rng::new(fresh_seed("cifar_rejects_bad_files_naming_them"));
    let dir = tempfile::tempdir().unwrap();
    let (b, ..) = cifar_records(3, 1, &mut rng);
    for i in 1..=5 {
        std::fs::write(dir.path().join(format!("data_batch_{i}.bin")), &b).unwrap();
    }
    // Missing test file.
    match cifar::load_cifar10(dir.path()) {
        Err(Error::Io { path, .. }) => assert!(path.ends_with("test_batch.bin")),
        other => panic!(
            "expected an I/O error naming test_batch.bin, got {:?}",
            other.err()
        ),
    }
    std::fs::write(dir.path().join("test_batch.bin"), &b).unwrap();
    let bad = rng.below(5) + 1;
    let name = format!("data_batch_{bad}.bin");
    let mut cut = b.len() - 1 - rng.below(b.len() - 1);
    if cut % 3073 == 0 {
        cut -= 1; // a whole number of records would be valid
    }
    std::fs::write(dir.path().join(&name), &b[..cut]).unwrap();
    assert_data_err(cifar::load_cifar10(dir.path()), &name, "truncated");
    let mut lb = b.clone();
    let rec = rng.below(3);
    lb[rec * 3073] = 10 + rng.below(246) as u8;
    std::fs::write(dir.path().join(&name), &lb).unwrap();
    assert_data_err(
        cifar::load_cifar10(dir.path()),
        &name,
        &format!("record {rec}: label"),
    );
}

#[test]
fn unknown_dataset_lists_valid_names() {
    let spec = DatasetSpec {
        name: "imagenet-but-typo".into(),
        ..Default::default()
    };
    match open_dataset(&spec) {
        Err(Error::Config(m)) => {
            for n in crate::data::DATASET_NAMES {
                assert!(m.contains(n), "{m}");
            }
        }
        other => panic!("expected a config error, got {:?}", other.err()),
    }
}
