//! Snappy decompression (the raw block format, no framing), for SSTable blocks stored with
//! compression type 1. Format: the uncompressed length as a varint, then elements whose tag
//! byte's low two bits say literal (0), or a copy with a 1-, 2- or 4-byte offset (1, 2, 3).
//! Copies may overlap their own output (a run), so they are done byte by byte.

use super::proto::varint;

/// Decompresses `src`; `None` when it is not a valid Snappy stream.
pub fn decompress(src: &[u8]) -> Option<Vec<u8>> {
    let (len, mut i) = varint(src, 0)?;
    let len = usize::try_from(len).ok()?;
    // Snappy expands at most ~1:21 (a 2-byte copy of 64 bytes); a bigger claim is corrupt.
    if len > src.len().saturating_mul(32) + 64 {
        return None;
    }
    let mut out = Vec::with_capacity(len);
    let le = |b: &[u8]| b.iter().rev().fold(0usize, |a, &x| (a << 8) | x as usize);
    while i < src.len() {
        let tag = src[i];
        i += 1;
        let (copy_len, offset) = match tag & 3 {
            0 => {
                let mut n = (tag >> 2) as usize;
                if n >= 60 {
                    let extra = n - 59;
                    n = le(src.get(i..i + extra)?);
                    i += extra;
                }
                let lit = src.get(i..i + n + 1)?;
                out.extend_from_slice(lit);
                i += n + 1;
                continue;
            }
            1 => {
                let b = *src.get(i)? as usize;
                i += 1;
                (
                    4 + ((tag >> 2) & 7) as usize,
                    (((tag >> 5) as usize) << 8) | b,
                )
            }
            2 => {
                let o = le(src.get(i..i + 2)?);
                i += 2;
                (1 + (tag >> 2) as usize, o)
            }
            _ => {
                let o = le(src.get(i..i + 4)?);
                i += 4;
                (1 + (tag >> 2) as usize, o)
            }
        };
        if offset == 0 || offset > out.len() {
            return None;
        }
        let start = out.len() - offset;
        for k in 0..copy_len {
            let b = out[start + k];
            out.push(b);
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::decompress;

    #[test]
    fn literals_and_every_copy_kind_including_overlapping_runs() {
        // "abcd" literal, copy1 (len 6, offset 4: overlaps itself), copy2 (len 3, offset 10),
        // a long literal (tag 60: one length byte) and copy4 (len 2, offset 1).
        let mut s = vec![0u8];
        s.extend([3 << 2, b'a', b'b', b'c', b'd']);
        s.extend([1 | ((6 - 4) << 2), 4]);
        s.extend([2 | ((3 - 1) << 2), 10, 0]);
        s.extend([60 << 2, 69]);
        s.extend(std::iter::repeat_n(b'x', 70));
        s.extend([3 | (1 << 2), 1, 0, 0, 0]);
        let want: Vec<u8> = [&b"abcdabcdab"[..], b"abc", &[b'x'; 70], b"xx"].concat();
        s[0] = want.len() as u8;
        assert_eq!(decompress(&s).as_deref(), Some(&want[..]));
        // Offsets before the start, truncated elements and a wrong length are refused.
        assert_eq!(decompress(&[4, 1, 1]), None);
        assert_eq!(decompress(&[4, 3 << 2, b'a']), None);
        assert_eq!(decompress(&[9, 3 << 2, b'a', b'b', b'c', b'd']), None);
    }
}
