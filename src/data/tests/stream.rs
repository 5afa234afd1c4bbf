//! The streaming datasets on generated folders: awkward files decode to the right RGB
//! pictures, bad files are refused or skipped by the flag, reduced-scale decoding serves the
//! crops, lists parse, and the loader's batches do not depend on thread timing.

use super::assert_data_err;
use crate::data::stream::synth::{
    jpeg_bytes, picture, picture_with_noise, with_exif_orientation, write_split, SynthFolder,
};
use crate::data::stream::{decode::decode_path, open_folder, open_list, BadImages};
use crate::data::{
    AugmentConfig, Dataset, EvalTransform, Loader, LoaderConfig, PretrainAugment, Routed, Transform,
};
use crate::testing::fresh_seed;
use crate::Rng;
use std::path::Path;
use std::sync::Arc;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/images")
        .join(name)
}

fn full(h: usize, w: usize) -> (usize, usize) {
    (h, w)
}

fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

/// JPEGs whose components are R, G, B decode as libjpeg decodes them (Pillow's decodes are
/// committed beside them, `tests/fixtures/images/make_rgb_coded.py`): the Adobe marker beats
/// the component ids, JFIF beats both. Read in the wrong colour space, a pixel moves by ~100.
#[test]
fn rgb_coded_jpegs_decode_as_libjpeg_decodes_them() {
    for name in ["rgb_coded", "rgb_coded_ids123", "rgb_coded_jfif"] {
        let got = decode_path(&fixture(&format!("{name}.jpg")), &full)
            .unwrap()
            .image;
        let want = image::open(fixture(&format!("{name}.png")))
            .unwrap()
            .to_rgb8();
        assert_eq!((got.height, got.width), (32, 48), "{name}");
        // Two IDCTs of the same coefficients.
        let d = max_diff(&got.data, want.as_raw());
        assert!(d <= 2, "{name}: max |ours - Pillow's| = {d}");
    }
}

#[test]
fn stream_decodes_gray_cmyk_and_every_exif_orientation() {
    let mut rng = Rng::new(fresh_seed(
        "stream_decodes_gray_cmyk_and_every_exif_orientation",
    ));
    let dir = tempfile::tempdir().unwrap();
    // CMYK (Adobe, inverted) against the RGB picture it was converted from; JPEG q95 on flat
    // blocks keeps every value within 16 of the source away from block edges.
    let cmyk = decode_path(&fixture("cmyk.jpg"), &full).unwrap().image;
    let rgb = image::open(fixture("rgb.png")).unwrap().to_rgb8();
    assert_eq!((cmyk.height, cmyk.width, cmyk.channels), (32, 48, 3));
    for (y, x) in [(4, 4), (4, 40), (28, 4), (28, 40)] {
        let (o, p) = ((y * 48 + x) * 3, rgb.get_pixel(x as u32, y as u32).0);
        assert!(
            max_diff(&cmyk.data[o..o + 3], &p) <= 16,
            "CMYK pixel ({y},{x})"
        );
    }
    // Grayscale: three equal channels, the luma the file holds.
    let pic = image::DynamicImage::ImageRgb8(picture(30 + rng.below(20) as u32, 40, &mut rng));
    let gray = image::DynamicImage::ImageLuma8(pic.to_luma8());
    std::fs::write(dir.path().join("g.jpg"), jpeg_bytes(&gray, 95)).unwrap();
    let g = decode_path(&dir.path().join("g.jpg"), &full).unwrap().image;
    let want = image::open(dir.path().join("g.jpg")).unwrap().to_luma8();
    assert!(g.data.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
    let luma: Vec<u8> = g.data.chunks(3).map(|p| p[0]).collect();
    assert!(max_diff(&luma, want.as_raw()) <= 2);
    // EXIF orientations 1..=8 against the `image` crate's own orientation code on the same
    // stored pixels (two JPEG decoders agree within a few levels; a wrong turn moves by ~100).
    let (h, w) = (24 + rng.below(16) as u32, 40 + rng.below(16) as u32);
    let stored = image::DynamicImage::ImageRgb8(picture(h, w, &mut rng));
    let plain = jpeg_bytes(&stored, 95);
    let base = image::load_from_memory(&plain).unwrap();
    for o in 1..=8u8 {
        let p = dir.path().join(format!("o{o}.jpg"));
        std::fs::write(&p, with_exif_orientation(&plain, o as u16)).unwrap();
        let d = decode_path(&p, &full).unwrap();
        let mut want = base.clone();
        want.apply_orientation(image::metadata::Orientation::from_exif(o).unwrap());
        let want = want.to_rgb8();
        assert_eq!(
            (d.image.height, d.image.width),
            (want.height() as usize, want.width() as usize),
            "orientation {o}"
        );
        assert_eq!(d.full, (d.image.height, d.image.width));
        assert!(
            max_diff(&d.image.data, want.as_raw()) <= 8,
            "orientation {o}"
        );
    }
}

#[test]
fn stream_refuses_or_skips_truncated_and_junk_files() {
    let mut rng = Rng::new(fresh_seed(
        "stream_refuses_or_skips_truncated_and_junk_files",
    ));
    let root = tempfile::tempdir().unwrap();
    let spec = SynthFolder {
        classes: 2,
        per_class: 4,
        sides: (20, 60),
        png_every: 2,
        gray_every: 0,
        exif_every: 0,
        quality: 90,
    };
    write_split(root.path(), "train", &spec, &mut rng).unwrap();
    write_split(root.path(), "val", &spec, &mut rng).unwrap();
    // A JPEG cut in its entropy-coded data, a PNG cut after its header, and random bytes.
    let jpg = root.path().join("train/c000/00000.JPEG");
    let bytes = std::fs::read(&jpg).unwrap();
    std::fs::write(&jpg, &bytes[..bytes.len() / 2]).unwrap();
    let png = root.path().join("train/c000/00001.png");
    let bytes = std::fs::read(&png).unwrap();
    std::fs::write(&png, &bytes[..40 + rng.below(20)]).unwrap();
    let junk: Vec<u8> = (0..300).map(|_| rng.below(256) as u8).collect();
    std::fs::write(root.path().join("train/c001/junk.jpg"), junk).unwrap();

    let (train, _) = open_folder(root.path(), BadImages::Fail).unwrap();
    assert_eq!(train.len(), 9);
    assert_data_err(train.sample(0, &full), "00000.JPEG", "JPEG");
    assert_data_err(train.sample(1, &full), "00001.png", "decode");
    let junk_ix = (0..9)
        .find(|&i| train.listing().path(i).ends_with("junk.jpg"))
        .unwrap();
    assert_data_err(train.sample(junk_ix, &full), "junk.jpg", "decode");

    // Skip: the next readable image (and its label) stands in; an epoch runs through.
    let (train, _) = open_folder(root.path(), BadImages::Skip).unwrap();
    let s = train.sample(0, &full).unwrap();
    let want = decode_path(&train.listing().path(2), &full).unwrap().image;
    assert_eq!(s.image.data, want.data);
    assert_eq!(s.label, train.label(2));
    let aug = Arc::new(PretrainAugment::new(AugmentConfig::cifar(16)).unwrap());
    let cfg = LoaderConfig {
        batch_size: 3,
        views: 2,
        workers: 2,
        ..Default::default()
    };
    let loader = Loader::new(Arc::new(train), aug, cfg).unwrap();
    let n: usize = loader.epoch(0).map(|b| b.unwrap().labels.len()).sum();
    assert_eq!(n, 9);
    assert!("ignore".parse::<BadImages>().is_err());
}

#[test]
fn gpu_routing_reads_each_file_once_and_sends_only_plain_jpegs() {
    let mut rng = Rng::new(fresh_seed(
        "gpu_routing_reads_each_file_once_and_sends_only_plain_jpegs",
    ));
    let root = tempfile::tempdir().unwrap();
    let spec = SynthFolder {
        classes: 2,
        per_class: 6,
        sides: (20, 60),
        png_every: 3,
        gray_every: 4,
        exif_every: 5,
        quality: 90,
    };
    write_split(root.path(), "train", &spec, &mut rng).unwrap();
    write_split(root.path(), "val", &spec, &mut rng).unwrap();
    // A JPEG cut in half: it goes to the host decoder, which skips it.
    let cut = root.path().join("train/c001/00000.JPEG");
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (train, _) = open_folder(root.path(), BadImages::Skip).unwrap();
    let (mut encoded, mut decoded) = (0, 0);
    for i in 0..train.len() {
        let path = train.listing().path(i);
        let before = train.files_read();
        let routed = train.sample_or_encoded(i, &full).unwrap();
        let reads = train.files_read() - before;
        match routed {
            Routed::Encoded(jpeg, label) => {
                encoded += 1;
                assert_eq!(reads, 1, "{path:?}");
                assert_eq!(&jpeg.bytes[..], &std::fs::read(&path).unwrap()[..]);
                assert_eq!(label, train.label(i));
                let want = decode_path(&path, &full).unwrap().image;
                assert_eq!(jpeg.size, (want.height, want.width), "{path:?}");
            }
            Routed::Decoded(s) if path == cut => {
                // The cut file, then its stand-in: two files, each read once.
                assert_eq!(reads, 2);
                assert_eq!(s.label, train.label(i + 1));
            }
            Routed::Decoded(s) => {
                decoded += 1;
                assert_eq!(reads, 1, "{path:?}");
                let want = decode_path(&path, &full).unwrap().image;
                assert_eq!(s.image.data, want.data, "{path:?}");
                assert_eq!(s.label, train.label(i));
            }
        }
    }
    // Per class: PNGs at 2 and 5 and an EXIF-rotated JPEG at 4 stay on the host; the
    // grayscale JPEG at 3 and the plain ones go to the GPU (less the cut one).
    assert_eq!((encoded, decoded), (5, 6));
    let before = train.files_read();
    train.sample(1, &full).unwrap();
    assert_eq!(train.files_read() - before, 1, "sample reads its file once");
}

#[test]
fn stream_decodes_at_reduced_scale_when_crops_allow() {
    let mut rng = Rng::new(fresh_seed(
        "stream_decodes_at_reduced_scale_when_crops_allow",
    ));
    let dir = tempfile::tempdir().unwrap();
    let (h, w) = (380 + rng.below(20), 500 + rng.below(20));
    // Smooth: a per-pixel noise pattern aliases differently under the IDCT's downscaling and
    // under the resize's antialiasing (measured: up to 3.1 levels of mean difference), which
    // says nothing of whether the crop lands on the same place.
    let pic = picture_with_noise(h as u32, w as u32, 1, &mut rng);
    let pic = image::DynamicImage::ImageRgb8(pic);
    let p = dir.path().join("big.jpg");
    std::fs::write(&p, jpeg_bytes(&pic, 95)).unwrap();
    // Needing a quarter of each side: the decoder runs its IDCT at 1/4.
    let d = decode_path(&p, &|fh, fw| (fh / 4, fw / 4)).unwrap();
    assert_eq!(d.full, (h, w));
    assert_eq!(
        (d.image.height, d.image.width),
        (h.div_ceil(4), w.div_ceil(4))
    );
    // Needing a bit more than a quarter: 1/2.
    let d = decode_path(&p, &|fh, fw| (fh.div_ceil(4) + 1, fw / 4)).unwrap();
    assert_eq!(
        (d.image.height, d.image.width),
        (h.div_ceil(2), w.div_ceil(2))
    );
    // The same views from a reduced decode and from the full one: crops are drawn on the
    // full size either way, so they differ only by resampling (mean within 3 levels of 255).
    let aug = PretrainAugment::new(AugmentConfig {
        color_p: 0.0,
        grayscale_p: 0.0,
        blur_p: 0.0,
        ..AugmentConfig::imagenet(64)
    })
    .unwrap();
    let full_img = decode_path(&p, &full).unwrap().image;
    let mut reduced_some = false;
    for v in 0..20 {
        let r = crate::data::sample_rng(1, 0, v, 0);
        let need = aug.decode_need((h, w), &r);
        let small = decode_path(&p, &|_, _| need).unwrap();
        reduced_some |= small.image.width < w;
        let a = aug.apply_vec(&full_img, &mut r.clone()).unwrap();
        let mut b = vec![0f32; a.len()];
        aug.apply_full(&small.image, small.full, &mut r.clone(), &mut b)
            .unwrap();
        let mean = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
        assert!(mean < 3.0 / 255.0, "view {v}: mean difference {mean}");
    }
    assert!(
        reduced_some,
        "no crop was small enough to decode at reduced scale"
    );
    // Evaluation's centre crop from a reduced decode: the same picture within resampling.
    let eval = EvalTransform::new(AugmentConfig::imagenet(64)).unwrap();
    let rng = Rng::new(0);
    let need = eval.decode_need((h, w), &rng);
    let small = decode_path(&p, &|_, _| need).unwrap();
    assert!(
        small.image.width <= w.div_ceil(2),
        "eval decoded at full size"
    );
    let a = eval.apply_vec(&full_img, &mut rng.clone()).unwrap();
    let b = eval.apply_vec(&small.image, &mut rng.clone()).unwrap();
    let mean = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
    assert!(mean < 3.0 / 255.0, "eval: mean difference {mean}");
}

#[test]
fn list_dataset_reads_paths_and_labels() {
    let mut rng = Rng::new(fresh_seed("list_dataset_reads_paths_and_labels"));
    let root = tempfile::tempdir().unwrap();
    let spec = SynthFolder {
        classes: 3,
        per_class: 2,
        sides: (10, 30),
        png_every: 2,
        gray_every: 0,
        exif_every: 0,
        quality: 90,
    };
    let files = write_split(root.path(), "imgs", &spec, &mut rng).unwrap();
    let mut train = String::from("# path label\n");
    for (k, f) in files.iter().enumerate() {
        let rel = f.strip_prefix(root.path()).unwrap().display().to_string();
        train += &format!("{rel} {}\n\n", k % 5);
    }
    std::fs::write(root.path().join("train.txt"), &train).unwrap();
    std::fs::write(root.path().join("val.txt"), "imgs/c000/00000.JPEG 1\n").unwrap();
    let (tr, te) = open_list(root.path(), BadImages::Fail).unwrap();
    assert_eq!(
        (tr.len(), te.len(), tr.num_classes(), te.num_classes()),
        (6, 1, 5, 5)
    );
    for (i, f) in files.iter().enumerate() {
        assert_eq!(tr.label(i), i % 5);
        let want = image::open(f).unwrap().to_rgb8();
        assert_eq!(tr.image(i).unwrap().width, want.width() as usize);
    }
    std::fs::write(root.path().join("val.txt"), "imgs/c000/00000.JPEG cat\n").unwrap();
    assert_data_err(
        open_list(root.path(), BadImages::Fail),
        "val.txt",
        "line 1: label 'cat'",
    );
    std::fs::write(root.path().join("val.txt"), "just-a-path\n").unwrap();
    assert_data_err(
        open_list(root.path(), BadImages::Fail),
        "val.txt",
        "expected '<path> <label>'",
    );
}

#[test]
fn streamed_epochs_do_not_depend_on_worker_count() {
    let mut rng = Rng::new(fresh_seed("streamed_epochs_do_not_depend_on_worker_count"));
    let root = tempfile::tempdir().unwrap();
    let spec = SynthFolder {
        classes: 3,
        per_class: 5,
        sides: (40, 120),
        png_every: 3,
        gray_every: 4,
        exif_every: 5,
        quality: 85,
    };
    write_split(root.path(), "train", &spec, &mut rng).unwrap();
    write_split(root.path(), "val", &spec, &mut rng).unwrap();
    let (train, _) = open_folder(root.path(), BadImages::Fail).unwrap();
    let train: Arc<dyn Dataset> = Arc::new(train);
    let aug = Arc::new(PretrainAugment::new(AugmentConfig::imagenet(24)).unwrap());
    let run = |workers| {
        let cfg = LoaderConfig {
            batch_size: 4,
            views: 2,
            workers,
            seed: 9,
            ..Default::default()
        };
        let l = Loader::new(train.clone(), aug.clone(), cfg).unwrap();
        l.epoch(1)
            .map(|b| {
                let b = b.unwrap();
                (
                    b.views[0].to_vec_f32().unwrap(),
                    b.views[1].to_vec_f32().unwrap(),
                    b.labels,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(0), run(3));
}
