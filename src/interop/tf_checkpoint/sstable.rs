//! The SSTable (LevelDB table) format of a bundle's `.index` file, read whole (it is small:
//! one entry per tensor). Layout: data blocks, a metaindex block, an index block, then a
//! 48-byte footer (two block handles as varints, zero padding, the magic number). Each block
//! is followed by a 5-byte trailer: compression type (0 none, 1 Snappy) and the masked CRC32C
//! of the block and that type byte. A block holds prefix-compressed entries (shared length,
//! unshared length, value length as varints, then the key suffix and the value), then restart
//! offsets (u32 each) and their count (u32). The index block maps each data block's last key
//! to the block's handle.

use super::crc32c;
use super::proto::varint;
use super::snappy;

/// Key and value bytes of one table entry.
pub type Entry = (Vec<u8>, Vec<u8>);

const MAGIC: u64 = 0xdb47_7524_8b80_fb57;
const FOOTER: usize = 48;

/// Where a block lies: offset and size (without its trailer).
#[derive(Clone, Copy, Debug)]
struct Handle {
    offset: usize,
    size: usize,
}

fn handle(b: &[u8], at: usize) -> Result<(Handle, usize), String> {
    let bad = || "a block handle is not two varints".to_string();
    let (offset, at) = varint(b, at).ok_or_else(bad)?;
    let (size, at) = varint(b, at).ok_or_else(bad)?;
    let h = Handle {
        offset: usize::try_from(offset).map_err(|_| bad())?,
        size: usize::try_from(size).map_err(|_| bad())?,
    };
    Ok((h, at))
}

/// A block's contents, checked against its CRC and decompressed.
fn block(file: &[u8], h: Handle) -> Result<Vec<u8>, String> {
    let end = h
        .offset
        .checked_add(h.size)
        .filter(|&e| e + 5 <= file.len())
        .ok_or_else(|| {
            format!(
                "block at {} of {} bytes runs past the end",
                h.offset, h.size
            )
        })?;
    let data = &file[h.offset..end];
    let kind = file[end];
    let stored = u32::from_le_bytes(file[end + 1..end + 5].try_into().expect("4 bytes"));
    let crc = crc32c::extend(crc32c::extend(0, data), &[kind]);
    if crc32c::mask(crc) != stored {
        return Err(format!(
            "block at {} fails its CRC32C check (corrupt file)",
            h.offset
        ));
    }
    match kind {
        0 => Ok(data.to_vec()),
        1 => snappy::decompress(data)
            .ok_or_else(|| format!("block at {} is not valid Snappy data", h.offset)),
        k => Err(format!(
            "block at {} has unknown compression type {k}",
            h.offset
        )),
    }
}

/// The (key, value) entries of one block, keys restored from their shared prefixes.
fn block_entries(b: &[u8]) -> Result<Vec<Entry>, String> {
    let bad = |what: &str| format!("malformed block: {what}");
    if b.len() < 4 {
        return Err(bad("shorter than its restart count"));
    }
    let restarts = u32::from_le_bytes(b[b.len() - 4..].try_into().expect("4 bytes")) as usize;
    let end = restarts
        .checked_mul(4)
        .and_then(|r| b.len().checked_sub(4 + r))
        .ok_or_else(|| bad("restart array larger than the block"))?;
    let (mut at, mut key, mut out) = (0, Vec::new(), Vec::new());
    while at < end {
        let next = |at: usize| varint(b, at).ok_or_else(|| bad("truncated entry header"));
        let (shared, a) = next(at)?;
        let (unshared, a) = next(a)?;
        let (vlen, a) = next(a)?;
        let (shared, unshared, vlen) = (shared as usize, unshared as usize, vlen as usize);
        if shared > key.len() || a + unshared + vlen > end {
            return Err(bad(
                "entry runs past the block or shares more than the last key",
            ));
        }
        key.truncate(shared);
        key.extend_from_slice(&b[a..a + unshared]);
        out.push((key.clone(), b[a + unshared..a + unshared + vlen].to_vec()));
        at = a + unshared + vlen;
    }
    Ok(out)
}

/// Every (key, value) of the table, in key order.
pub fn entries(file: &[u8]) -> Result<Vec<Entry>, String> {
    if file.len() < FOOTER {
        return Err(format!(
            "{} bytes: too short for an SSTable footer",
            file.len()
        ));
    }
    let footer = &file[file.len() - FOOTER..];
    let magic = u64::from_le_bytes(footer[40..].try_into().expect("8 bytes"));
    if magic != MAGIC {
        return Err("no SSTable magic number at the end: not a TensorFlow checkpoint index".into());
    }
    let (_metaindex, at) = handle(footer, 0)?;
    let (index, _) = handle(footer, at)?;
    let mut out = Vec::new();
    for (_, v) in block_entries(&block(file, index)?)? {
        let (h, _) = handle(&v, 0)?;
        out.extend(block_entries(&block(file, h)?)?);
    }
    Ok(out)
}
