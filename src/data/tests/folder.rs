use super::assert_data_err;
use crate::data::{open_dataset, Dataset, DatasetSpec, FolderDataset};
use crate::testing::fresh_seed;
use crate::Rng;
use std::path::Path;

fn random_rgb(h: u32, w: u32, rng: &mut Rng) -> image::RgbImage {
    // Smooth content (JPEG-friendly) plus a little noise.
    let (a, b) = (rng.range(0.0, 6.0), rng.range(0.0, 6.0));
    image::RgbImage::from_fn(w, h, |x, y| {
        let t = (x as f64 / w as f64 * a).sin() + (y as f64 / h as f64 * b).cos();
        let v = ((t + 2.0) * 60.0) as u8;
        image::Rgb([v, 255 - v, (v / 2).wrapping_add(rng.below(8) as u8)])
    })
}

/// Writes `root/<split>/<class>/<k>.{png,jpg}`; returns the PNG images per class.
fn write_split(root: &Path, split: &str, classes: &[&str], per: usize, rng: &mut Rng) {
    for c in classes {
        let d = root.join(split).join(c);
        std::fs::create_dir_all(&d).unwrap();
        for k in 0..per {
            let (h, w) = (8 + rng.below(40) as u32, 8 + rng.below(40) as u32);
            let img = random_rgb(h, w, rng);
            let ext = if k % 2 == 0 { "png" } else { "JPG" };
            img.save_with_format(
                d.join(format!("{k}.{ext}")),
                if ext == "png" {
                    image::ImageFormat::Png
                } else {
                    image::ImageFormat::Jpeg
                },
            )
            .unwrap();
        }
    }
}

#[test]
fn folder_reads_imagefolder_layout() {
    let mut rng = Rng::new(fresh_seed("folder_reads_imagefolder_layout"));
    let root = tempfile::tempdir().unwrap();
    let classes = ["cat", "dog", "emu"];
    write_split(root.path(), "train", &classes, 3, &mut rng);
    write_split(root.path(), "val", &classes, 2, &mut rng);
    std::fs::write(root.path().join("train/cat/notes.txt"), "ignored").unwrap();
    let s = open_dataset(&DatasetSpec {
        name: "folder".into(),
        data_dir: Some(root.path().into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!((s.train.len(), s.test.len()), (9, 6));
    assert_eq!(s.train.class_names(), &classes.map(String::from)[..]);
    let train = FolderDataset::open(&root.path().join("train")).unwrap();
    for i in 0..train.len() {
        let f = &train.files()[i];
        let class = f.parent().unwrap().file_name().unwrap().to_str().unwrap();
        assert_eq!(classes[train.label(i)], class);
        let im = train.image(i).unwrap();
        let want = image::open(f).unwrap().to_rgb8();
        assert_eq!(
            (im.height, im.width, im.channels),
            (want.height() as usize, want.width() as usize, 3)
        );
        if f.extension().unwrap() == "png" {
            assert_eq!(&im.data[..], want.as_raw().as_slice(), "{}", f.display());
        }
    }
    // Preloading decodes everything to one shape.
    let side = 8 + rng.below(24);
    let pre = train.preload(side).unwrap();
    assert_eq!(pre.shape(), (side, side, 3));
    assert_eq!(pre.labels().len(), 9);
}

#[test]
fn folder_rejects_empty_class_and_corrupt_images() {
    let mut rng = Rng::new(fresh_seed("folder_rejects_empty_class_and_corrupt_images"));
    let root = tempfile::tempdir().unwrap();
    write_split(root.path(), "train", &["a", "b"], 2, &mut rng);
    std::fs::create_dir_all(root.path().join("train/c_empty")).unwrap();
    std::fs::write(root.path().join("train/c_empty/readme.md"), "x").unwrap();
    assert_data_err(
        FolderDataset::open(&root.path().join("train")),
        "c_empty",
        "empty class folder",
    );
    std::fs::remove_dir_all(root.path().join("train/c_empty")).unwrap();
    // Random bytes behind a .jpg name, and a PNG cut after a few bytes.
    let junk: Vec<u8> = (0..100 + rng.below(400))
        .map(|_| rng.below(256) as u8)
        .collect();
    std::fs::write(root.path().join("train/a/junk.jpg"), junk).unwrap();
    assert_data_err(
        FolderDataset::open(&root.path().join("train")),
        "junk.jpg",
        "image",
    );
    std::fs::remove_file(root.path().join("train/a/junk.jpg")).unwrap();
    let png = std::fs::read(root.path().join("train/b/0.png")).unwrap();
    std::fs::write(
        root.path().join("train/b/cut.png"),
        &png[..8 + rng.below(8)],
    )
    .unwrap();
    assert_data_err(
        FolderDataset::open(&root.path().join("train")),
        "cut.png",
        "image",
    );
    std::fs::remove_file(root.path().join("train/b/cut.png")).unwrap();
    // Splits whose classes differ; then no test split at all.
    write_split(root.path(), "test", &["a", "z"], 1, &mut rng);
    assert_data_err(
        crate::data::folder::open_folder_splits(root.path()),
        "test",
        "differ",
    );
    std::fs::remove_dir_all(root.path().join("test")).unwrap();
    let name = root
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_data_err(
        crate::data::folder::open_folder_splits(root.path()),
        &name,
        "no test/",
    );
}
