//! The emulated nvJPEG's own rules: headers, backends.

use super::*;

fn jpeg(gray: bool, w: u32, h: u32) -> Vec<u8> {
    let img = if gray {
        image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(w, h, |x, y| {
            image::Luma([(x * 7 + y * 3) as u8])
        }))
    } else {
        image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([x as u8, y as u8, (x + y) as u8])
        }))
    };
    crate::data::stream::synth::jpeg_bytes(&img, 90)
}

#[test]
fn the_header_gives_sizes_and_planes() {
    let j = jpeg(false, 33, 17);
    let hd = parse_header(&j).unwrap();
    assert_eq!((hd.sof, hd.precision, hd.width, hd.height), (0, 8, 33, 17));
    assert_eq!(hd.sampling.len(), 3);
    assert_eq!(hd.plane(0), (33, 17));
    let g = parse_header(&jpeg(true, 5, 9)).unwrap();
    assert_eq!((g.sampling.len(), g.plane(0)), (1, (5, 9)));
}

#[test]
fn the_hardware_backend_takes_baseline_single_scan_jpegs_of_its_subsamplings() {
    let (hw, def) = (BACKEND_HARDWARE, BACKEND_DEFAULT);
    let j = jpeg(false, 24, 16);
    let hd = parse_header(&j).unwrap();
    assert_eq!(
        hd.first_scan,
        Some(3),
        "`image` writes one interleaved scan"
    );
    assert_eq!(parse_header(&jpeg(true, 8, 8)).unwrap().first_scan, Some(1));
    assert_eq!(unsupported(&hd, hw), None);
    // The first scan with one of the three components: more scans follow.
    let sos = j.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let mut split = j.clone();
    split[sos + 4] = 1;
    let multi = parse_header(&split).unwrap();
    assert_eq!(multi.first_scan, Some(1));
    assert!(unsupported(&multi, hw).unwrap().contains("single-scan"));
    assert_eq!(unsupported(&multi, def), None);
    // Extended sequential: the DEFAULT backend's, not the HARDWARE's.
    let ext = Header {
        sof: 1,
        ..hd.clone()
    };
    assert!(unsupported(&ext, hw)
        .unwrap()
        .contains("baseline JPEGs only"));
    assert_eq!(unsupported(&ext, def), None);
    // Subsamplings: 4:4:0 yes, 4:1:1 and 4:1:0 no (HARDWARE), all on DEFAULT.
    for (y, css, ok) in [
        ((1, 2), "4:4:0", true),
        ((4, 1), "4:1:1", false),
        ((4, 2), "4:1:0", false),
    ] {
        let h = Header {
            sampling: vec![y, (1, 1), (1, 1)],
            ..hd.clone()
        };
        assert_eq!(h.subsampling(), css);
        assert_eq!(unsupported(&h, hw).is_none(), ok, "{css}");
        assert_eq!(unsupported(&h, def), None, "{css}");
    }
    // Four components and 12-bit samples: neither backend.
    let cmyk = Header {
        sampling: vec![(1, 1); 4],
        first_scan: Some(4),
        ..hd.clone()
    };
    assert!(unsupported(&cmyk, def).unwrap().contains("CMYK"));
    let deep = Header {
        precision: 12,
        ..hd
    };
    assert!(unsupported(&deep, def).unwrap().contains("12-bit"));
}

#[test]
fn broken_headers_have_their_status() {
    assert_eq!(
        parse_header(b"PNG.....").unwrap_err().status,
        STATUS_BAD_JPEG
    );
    let j = jpeg(false, 8, 8);
    assert_eq!(
        parse_header(&j[..6]).unwrap_err().status,
        STATUS_INCOMPLETE_BITSTREAM
    );
}

#[test]
fn three_components_are_read_as_ycbcr_whatever_the_markers_say() {
    let cpu = |bytes: &[u8]| {
        let path = std::path::Path::new("test.jpg");
        crate::data::stream::decode::decode_bytes(path, bytes, &|h, w| (h, w))
            .unwrap()
            .image
            .data
            .into_owned()
    };
    let plain = jpeg(false, 24, 16);
    let d = decode_one(&plain, BACKEND_HARDWARE, "plain").unwrap();
    assert_eq!(d.rgb, cpu(&plain), "a YCbCr JPEG decodes as on the CPU");
    // Adobe transform 0 with ids 'R', 'G', 'B' (Pillow's keep_rgb): the CPU decoder reads RGB.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/images/rgb_coded.jpg"
    );
    let rgb = std::fs::read(path).unwrap();
    let d = decode_one(&rgb, BACKEND_HARDWARE, "rgb").unwrap();
    let most = d
        .rgb
        .iter()
        .zip(cpu(&rgb))
        .map(|(a, b)| a.abs_diff(b))
        .max()
        .unwrap();
    assert!(most > 100, "read as RGB: max difference {most}");
}
