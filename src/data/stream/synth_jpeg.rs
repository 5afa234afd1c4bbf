//! JPEGs `image` cannot write, written by hand for tests of the decoders' routing: a
//! progressive grayscale JPEG and a 4-component (Adobe CMYK) baseline one, of any size. Each
//! 8x8 block is flat (its DC coefficient only, every AC coefficient zero), at a level drawn
//! per block and component, so the pictures are blocky but not uniform.

use crate::Rng;

/// Quantisation step of every coefficient: with 8, a DC value `d` decodes to `128 + d`.
const Q: u8 = 8;

/// A progressive (SOF2) 8-bit grayscale JPEG of `w` x `h`: one DC scan, no AC scans.
pub fn progressive_gray_jpeg(w: u32, h: u32, rng: &mut Rng) -> Vec<u8> {
    blocky(w, h, 1, true, rng)
}

/// A baseline (SOF0) 8-bit JPEG of `w` x `h` with 4 components and an Adobe marker saying
/// CMYK (no colour transform), all sampled 1x1, in one interleaved scan.
pub fn cmyk_jpeg(w: u32, h: u32, rng: &mut Rng) -> Vec<u8> {
    blocky(w, h, 4, false, rng)
}

fn blocky(w: u32, h: u32, components: u8, progressive: bool, rng: &mut Rng) -> Vec<u8> {
    let (w16, h16) = (
        u16::try_from(w).expect("JPEG sides fit 16 bits"),
        u16::try_from(h).expect("JPEG sides fit 16 bits"),
    );
    let mut j = vec![0xFF, 0xD8];
    if components == 4 {
        // APP14 "Adobe": version 100, no flags, transform 0 (CMYK as stored).
        let mut adobe = b"Adobe".to_vec();
        adobe.extend([0, 100, 0, 0, 0, 0, 0]);
        segment(&mut j, 0xEE, &adobe);
    }
    let mut dqt = vec![0u8];
    dqt.extend([Q; 64]);
    segment(&mut j, 0xDB, &dqt);
    let mut sof = vec![8];
    sof.extend(h16.to_be_bytes());
    sof.extend(w16.to_be_bytes());
    sof.push(components);
    for c in 1..=components {
        sof.extend([c, 0x11, 0]);
    }
    segment(&mut j, if progressive { 0xC2 } else { 0xC0 }, &sof);
    // DC table 0: categories 0..=11, each a 4-bit code equal to the category.
    let mut dc = vec![0x00, 0, 0, 0, 12];
    dc.extend([0u8; 12]);
    dc.extend(0..12u8);
    segment(&mut j, 0xC4, &dc);
    if !progressive {
        // AC table 0: end-of-block only, code `0`.
        let mut ac = vec![0x10, 1];
        ac.extend([0u8; 15]);
        ac.push(0x00);
        segment(&mut j, 0xC4, &ac);
    }
    let mut sos = vec![components];
    for c in 1..=components {
        sos.extend([c, 0x00]);
    }
    // Baseline: spectral selection 0..=63; progressive: the DC scan (0..=0), no approximation.
    sos.extend(if progressive { [0, 0, 0] } else { [0, 63, 0] });
    segment(&mut j, 0xDA, &sos);
    let blocks = (w.div_ceil(8) * h.div_ceil(8)) as usize;
    let mut bits = Bits::default();
    let mut pred = vec![0i32; components as usize];
    for _ in 0..blocks {
        for p in pred.iter_mut() {
            let level = rng.below(201) as i32 - 100;
            dc_diff(&mut bits, level - *p);
            *p = level;
            if !progressive {
                bits.put(0, 1); // end of block
            }
        }
    }
    j.extend(bits.finish());
    j.extend([0xFF, 0xD9]);
    j
}

/// Marker `m` and its segment `body`, with the length.
fn segment(out: &mut Vec<u8>, m: u8, body: &[u8]) {
    out.extend([0xFF, m]);
    out.extend(((body.len() + 2) as u16).to_be_bytes());
    out.extend(body);
}

/// A DC difference: its category's code, then the category's bits (negative values as
/// `diff - 1` in that many bits, as JPEG codes them).
fn dc_diff(bits: &mut Bits, diff: i32) {
    let s = 32 - diff.unsigned_abs().leading_zeros();
    bits.put(s, 4);
    let v = (if diff >= 0 { diff } else { diff - 1 }) as u32;
    bits.put(v & ((1 << s) - 1), s);
}

/// Entropy-coded bytes, most significant bit first, 0xFF stuffed with 0x00.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u8,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u32, len: u32) {
        for k in (0..len).rev() {
            self.acc = (self.acc << 1) | ((value >> k) & 1) as u8;
            self.n += 1;
            if self.n == 8 {
                self.out.push(self.acc);
                if self.acc == 0xFF {
                    self.out.push(0);
                }
                (self.acc, self.n) = (0, 0);
            }
        }
    }

    /// The bytes, the last one padded with ones.
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            let pad = 8 - self.n;
            self.put((1 << pad) - 1, pad);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jpeg_decoder::{CodingProcess, Decoder, PixelFormat};

    #[test]
    fn the_progressive_jpeg_decodes_to_its_block_levels() {
        let (w, h) = (21, 10);
        let j = progressive_gray_jpeg(w, h, &mut Rng::new(5));
        let mut d = Decoder::new(&j[..]);
        let px = d.decode().unwrap();
        let info = d.info().unwrap();
        assert_eq!(info.coding_process, CodingProcess::DctProgressive);
        assert_eq!((info.width, info.height), (w as u16, h as u16));
        assert_eq!(info.pixel_format, PixelFormat::L8);
        // The same draws give each block's level: every pixel of a block is 128 + level.
        let mut rng = Rng::new(5);
        let levels: Vec<i32> = (0..6).map(|_| rng.below(201) as i32 - 100).collect();
        for y in 0..h as usize {
            for x in 0..w as usize {
                let b = (y / 8) * 3 + x / 8;
                assert_eq!(px[y * w as usize + x] as i32, 128 + levels[b], "({x}, {y})");
            }
        }
    }

    #[test]
    fn the_cmyk_jpeg_is_baseline_with_four_components() {
        let (w, h) = (17, 9);
        let j = cmyk_jpeg(w, h, &mut Rng::new(6));
        let mut d = Decoder::new(&j[..]);
        let px = d.decode().unwrap();
        let info = d.info().unwrap();
        assert_eq!(info.coding_process, CodingProcess::DctSequential);
        assert_eq!(info.pixel_format, PixelFormat::CMYK32);
        assert_eq!(px.len(), (w * h * 4) as usize);
        // Not one flat colour: the blocks differ.
        assert!(px.chunks(4).any(|p| p != &px[..4]));
    }
}
