//! The JPEG frame header as the emulated nvJPEG reads it, and what each backend decodes.

use crate::cuda::driver::nvjpeg::*;

/// What the frame header of a JPEG says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The SOFn marker's n (0 baseline, 1 extended, 2 progressive, 3 lossless, ...).
    pub sof: u8,
    pub precision: u8,
    pub width: u32,
    pub height: u32,
    /// (horizontal, vertical) sampling factor of each component.
    pub sampling: Vec<(u8, u8)>,
    /// How many components the first scan holds (all of them: one interleaved scan, as the
    /// HARDWARE backend needs; fewer: more scans follow); `None` when no scan header follows
    /// the frame header.
    pub first_scan: Option<u8>,
}

impl Header {
    /// Width and height of component `i` (the image's, scaled by its sampling factors).
    pub fn plane(&self, i: usize) -> (u32, u32) {
        let hmax = self.sampling.iter().map(|s| s.0).max().unwrap_or(1).max(1) as u32;
        let vmax = self.sampling.iter().map(|s| s.1).max().unwrap_or(1).max(1) as u32;
        let (h, v) = self.sampling[i];
        (
            (self.width * h as u32).div_ceil(hmax),
            (self.height * v as u32).div_ceil(vmax),
        )
    }

    /// The chroma subsampling name (the HARDWARE backend takes 4:4:4, 4:2:2, 4:2:0, 4:4:0).
    pub(super) fn subsampling(&self) -> &'static str {
        if self.sampling.len() != 3 {
            return "other";
        }
        let (y, cb, cr) = (self.sampling[0], self.sampling[1], self.sampling[2]);
        if cb != cr || cb.0 == 0 || cb.1 == 0 || y.0 % cb.0 != 0 || y.1 % cb.1 != 0 {
            return "other";
        }
        match (y.0 / cb.0, y.1 / cb.1) {
            (1, 1) => "4:4:4",
            (2, 1) => "4:2:2",
            (2, 2) => "4:2:0",
            (1, 2) => "4:4:0",
            (4, 1) => "4:1:1",
            (4, 2) => "4:1:0",
            _ => "other",
        }
    }
}

/// Reads the markers up to the frame header. `BAD_JPEG` for a stream that is not a JPEG or
/// has a malformed segment, `INCOMPLETE_BITSTREAM` when it ends before the frame header.
pub fn parse_header(data: &[u8]) -> Result<Header> {
    let short = || {
        NvjpegError::new(
            STATUS_INCOMPLETE_BITSTREAM,
            format!(
                "the stream ends after {} bytes, before its frame header",
                data.len()
            ),
        )
    };
    if data.len() < 2 {
        return Err(short());
    }
    if data[0] != 0xFF || data[1] != 0xD8 {
        return Err(NvjpegError::new(
            STATUS_BAD_JPEG,
            format!(
                "no start-of-image marker (the stream starts {:02X} {:02X}, not FF D8)",
                data[0], data[1]
            ),
        ));
    }
    let mut i = 2;
    loop {
        // Fill bytes may precede a marker.
        while i < data.len() && data[i] == 0xFF && data.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        if i + 4 > data.len() {
            return Err(short());
        }
        if data[i] != 0xFF {
            return Err(NvjpegError::new(
                STATUS_BAD_JPEG,
                format!("byte {i}: {:02X} where a marker was expected", data[i]),
            ));
        }
        let m = data[i + 1];
        let len = u16::from_be_bytes([data[i + 2], data[i + 3]]) as usize;
        if matches!(m, 0xD8 | 0xD9 | 0xDA | 0x00 | 0x01 | 0xD0..=0xD7) {
            return Err(NvjpegError::new(
                STATUS_BAD_JPEG,
                format!("byte {i}: marker FF {m:02X} before the frame header"),
            ));
        }
        if len < 2 {
            return Err(NvjpegError::new(
                STATUS_BAD_JPEG,
                format!("byte {i}: segment FF {m:02X} of length {len}"),
            ));
        }
        let body = i + 4;
        let end = i + 2 + len;
        if end > data.len() {
            return Err(short());
        }
        let is_sof = (0xC0..=0xCF).contains(&m) && !matches!(m, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let b = &data[body..end];
            if b.len() < 6 {
                return Err(NvjpegError::new(
                    STATUS_BAD_JPEG,
                    format!("frame header of {} bytes", b.len()),
                ));
            }
            let n = b[5] as usize;
            if n == 0 || b.len() < 6 + 3 * n {
                return Err(NvjpegError::new(
                    STATUS_BAD_JPEG,
                    format!("frame header of {} bytes for {n} components", b.len()),
                ));
            }
            let sampling = (0..n)
                .map(|c| (b[6 + 3 * c + 1] >> 4, b[6 + 3 * c + 1] & 15))
                .collect::<Vec<_>>();
            if sampling
                .iter()
                .any(|&(h, v)| !(1..=4).contains(&h) || !(1..=4).contains(&v))
            {
                return Err(NvjpegError::new(
                    STATUS_BAD_JPEG,
                    format!("sampling factors {sampling:?} outside 1..=4"),
                ));
            }
            return Ok(Header {
                sof: m - 0xC0,
                precision: b[0],
                height: u16::from_be_bytes([b[1], b[2]]) as u32,
                width: u16::from_be_bytes([b[3], b[4]]) as u32,
                sampling,
                first_scan: first_scan(data, end),
            });
        }
        i = end;
    }
}

/// The component count of the first scan header at or after byte `i` (the segments between
/// the frame and the scan are walked by their lengths), or `None` if there is none to read.
fn first_scan(data: &[u8], mut i: usize) -> Option<u8> {
    loop {
        while i < data.len() && data[i] == 0xFF && data.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        if i + 4 > data.len() || data[i] != 0xFF {
            return None;
        }
        if data[i + 1] == 0xDA {
            return data.get(i + 4).copied();
        }
        let len = u16::from_be_bytes([data[i + 2], data[i + 3]]) as usize;
        if len < 2 {
            return None;
        }
        i += 2 + len;
    }
}

/// Why `backend`'s decode does not take a JPEG with header `hd` (what
/// nvjpegDecodeBatchedSupported answers from the header alone), or `None` when it does.
pub fn unsupported(hd: &Header, backend: i32) -> Option<String> {
    let hardware = backend == BACKEND_HARDWARE;
    let kind = match hd.sof {
        0 => "baseline",
        1 => "extended sequential",
        2 => "progressive",
        3 => "lossless",
        _ => "hierarchical or arithmetic-coded",
    };
    let n = hd.sampling.len();
    let css = hd.subsampling();
    if hd.sof > 2 {
        Some(format!(
            "a {kind} JPEG (SOF{}): nvJPEG's DEFAULT and HARDWARE backends decode Huffman-coded \
             DCT JPEGs",
            hd.sof
        ))
    } else if hardware && hd.sof != 0 {
        Some(format!(
            "a {kind} JPEG (SOF{}): the HARDWARE backend decodes baseline JPEGs only",
            hd.sof
        ))
    } else if hd.precision != 8 {
        Some(format!("{}-bit samples (8-bit only)", hd.precision))
    } else if n == 4 {
        Some("4 components (CMYK or YCCK): decoding to RGBI takes 1 or 3".into())
    } else if n != 1 && n != 3 {
        Some(format!("{n} components: decoding to RGBI takes 1 or 3"))
    } else if hardware && hd.first_scan != Some(n as u8) {
        Some(match hd.first_scan {
            Some(k) => format!(
                "the first scan holds {k} of the {n} components (more scans follow): the \
                 HARDWARE backend decodes single-scan JPEGs"
            ),
            None => "no scan header after the frame header".into(),
        })
    } else if hardware && n == 3 && !matches!(css, "4:4:4" | "4:2:2" | "4:2:0" | "4:4:0") {
        Some(format!(
            "chroma subsampling {css}, which the HARDWARE backend does not decode (4:4:4, \
             4:2:2, 4:2:0 and 4:4:0 only)"
        ))
    } else {
        None
    }
}
