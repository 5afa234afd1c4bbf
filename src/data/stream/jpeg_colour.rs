//! Which colour space a 3-component JPEG's samples are in, by libjpeg's rule (what Pillow,
//! and so torchvision, decode by): a JFIF marker means YCbCr; else an Adobe APP14 marker's
//! transform (0: RGB, anything else: YCbCr); else component ids 'R', 'G', 'B' mean RGB;
//! else YCbCr. `jpeg-decoder` looks at the component ids first, so it reads an Adobe RGB
//! JPEG with ids 1, 2, 3 as YCbCr and a JFIF one with ids 'R', 'G', 'B' as RGB; the
//! streaming decoder overrides it with this rule. Only the markers before the frame header
//! are read.

/// What the markers up to the frame header say about colour.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ColourMarkers {
    pub jfif: bool,
    /// The Adobe APP14 marker's transform byte, if there is such a marker.
    pub adobe_transform: Option<u8>,
    /// The frame's component ids, in order.
    pub ids: Vec<u8>,
}

const RGB_IDS: [u8; 3] = *b"RGB";

impl ColourMarkers {
    /// Whether libjpeg decodes these 3 components as RGB (no colour transform).
    pub fn is_rgb(&self) -> bool {
        if self.ids.len() != 3 || self.jfif {
            return false;
        }
        match self.adobe_transform {
            Some(t) => t == 0,
            None => self.ids == RGB_IDS,
        }
    }

    /// Whether any marker hints at RGB samples, whatever the rule concludes: decoders that
    /// weigh the markers differently may read such a file either way.
    pub fn hints_rgb(&self) -> bool {
        self.ids.len() == 3 && (self.adobe_transform == Some(0) || self.ids == RGB_IDS)
    }
}

/// The colour markers of `bytes`, or `None` when the stream is not a JPEG or ends or breaks
/// before its frame header.
pub fn colour_markers(bytes: &[u8]) -> Option<ColourMarkers> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut found = ColourMarkers::default();
    let mut i = 2;
    loop {
        // Fill bytes may precede a marker.
        while bytes.get(i) == Some(&0xFF) && bytes.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let head = bytes.get(i..i + 4)?;
        if head[0] != 0xFF {
            return None;
        }
        let len = u16::from_be_bytes([head[2], head[3]]) as usize;
        let body = bytes.get(i + 4..(i + 2 + len).max(i + 4))?;
        match head[1] {
            0xE0 if body.starts_with(b"JFIF\0") => found.jfif = true,
            // "Adobe", version (2), flags (2 + 2), transform.
            0xEE if body.len() >= 12 && body.starts_with(b"Adobe") => {
                found.adobe_transform = Some(body[11])
            }
            // SOF0..SOF15 but DHT (C4), JPG (C8) and DAC (CC).
            m @ 0xC0..=0xCF if !matches!(m, 0xC4 | 0xC8 | 0xCC) => {
                let n = *body.get(5)? as usize;
                found.ids = (0..n)
                    .map(|c| body.get(6 + 3 * c).copied())
                    .collect::<Option<_>>()?;
                return Some(found);
            }
            // A scan or an image's end before any frame header.
            0xDA | 0xD9 => return None,
            _ => {}
        }
        i += 2 + len;
    }
}

/// The colour transform `jpeg-decoder` is to apply to a 3-component JPEG with these markers
/// (libjpeg's choice); `None` for other component counts, left to the decoder.
pub fn transform_for(m: &ColourMarkers) -> Option<jpeg_decoder::ColorTransform> {
    use jpeg_decoder::ColorTransform as T;
    (m.ids.len() == 3).then(|| if m.is_rgb() { T::RGB } else { T::YCbCr })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn markers(jfif: bool, adobe: Option<u8>, ids: &[u8]) -> ColourMarkers {
        ColourMarkers {
            jfif,
            adobe_transform: adobe,
            ids: ids.to_vec(),
        }
    }

    #[test]
    fn libjpegs_rule_jfif_then_adobe_then_ids() {
        let (rgb, ycc) = (b"RGB", [1, 2, 3]);
        // (JFIF, Adobe transform, ids) -> RGB?
        let table: [(bool, Option<u8>, &[u8], bool); 9] = [
            (false, None, &ycc, false),
            (false, None, rgb, true),
            (false, None, &[7, 8, 9], false),
            (false, Some(0), &ycc, true),
            (false, Some(1), rgb, false),
            (false, Some(2), rgb, false),
            (true, None, rgb, false),
            (true, Some(0), rgb, false),
            (false, Some(0), &[1], false),
        ];
        for (jfif, adobe, ids, want) in table {
            let m = markers(jfif, adobe, ids);
            assert_eq!(m.is_rgb(), want, "{m:?}");
        }
        assert!(markers(true, None, rgb).hints_rgb());
        assert!(markers(false, Some(0), &ycc).hints_rgb());
        assert!(!markers(false, Some(1), &ycc).hints_rgb());
    }

    #[test]
    fn markers_are_read_up_to_the_frame_header() {
        // SOI, fill byte, APP0 JFIF, APP14 Adobe (transform 0), SOF0 with 3 components.
        let mut j = vec![0xFF, 0xD8, 0xFF];
        j.extend([0xFF, 0xE0, 0, 7]);
        j.extend(b"JFIF\0");
        j.extend([0xFF, 0xEE, 0, 14]);
        j.extend(b"Adobe\0\x64\0\0\0\0\0");
        j.extend([0xFF, 0xC0, 0, 17, 8, 0, 8, 0, 8, 3]);
        j.extend([b'R', 0x11, 0, b'G', 0x11, 0, b'B', 0x11, 0]);
        let m = colour_markers(&j).unwrap();
        assert_eq!(m, markers(true, Some(0), b"RGB"));
        assert_eq!(transform_for(&m), Some(jpeg_decoder::ColorTransform::YCbCr));
        // Cut anywhere before the last id: no frame header to read.
        for cut in 0..j.len() - 1 {
            assert_eq!(colour_markers(&j[..cut]), None, "cut at {cut}");
        }
        // A scan before any frame header.
        assert_eq!(colour_markers(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), None);
        assert_eq!(colour_markers(b"\x89PNG"), None);
    }
}
