//! The few protobuf messages of a TensorFlow tensor bundle, decoded by hand (no protobuf
//! dependency): varints, and fields as (number, wire type, payload). Unknown fields are
//! skipped, as protobuf requires.
//!
//! `BundleEntryProto`: 1 dtype (enum), 2 shape (`TensorShapeProto`: 2 repeated dim, each
//! `Dim` with 1 size), 3 shard_id, 4 offset, 5 size, 6 crc32c (fixed32), 7 slices (partitioned
//! variables, which we refuse). `BundleHeaderProto`: 1 num_shards, 2 endianness (0 little).

/// A varint at `at`: its value and the position after it.
pub fn varint(b: &[u8], mut at: usize) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(at)?;
        at += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some((v, at));
        }
    }
    None
}

/// One field: its number and its payload (a varint or fixed value, or bytes).
pub enum Field<'a> {
    Int(u32, u64),
    Bytes(u32, &'a [u8]),
}

/// The fields of a message, in order; `None` if it is malformed.
pub fn fields(b: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let (key, next) = varint(b, at)?;
        at = next;
        let number = u32::try_from(key >> 3).ok()?;
        match key & 7 {
            0 => {
                let (v, next) = varint(b, at)?;
                at = next;
                out.push(Field::Int(number, v));
            }
            1 => {
                let v = u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?);
                at += 8;
                out.push(Field::Int(number, v));
            }
            2 => {
                let (n, next) = varint(b, at)?;
                let end = next.checked_add(usize::try_from(n).ok()?)?;
                out.push(Field::Bytes(number, b.get(next..end)?));
                at = end;
            }
            5 => {
                let v = u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?);
                at += 4;
                out.push(Field::Int(number, v as u64));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Where a tensor lies in the data files, and what it is.
#[derive(Clone, Debug, PartialEq)]
pub struct BundleEntry {
    pub dtype: u64,
    pub shape: Vec<usize>,
    pub shard_id: u64,
    pub offset: u64,
    pub size: u64,
    pub crc32c: Option<u32>,
    pub sliced: bool,
}

fn shape(b: &[u8]) -> Option<Vec<usize>> {
    let mut dims = Vec::new();
    for f in fields(b)? {
        match f {
            Field::Bytes(2, dim) => {
                let mut size = 0i64;
                for g in fields(dim)? {
                    if let Field::Int(1, v) = g {
                        size = v as i64;
                    }
                }
                dims.push(usize::try_from(size).ok()?);
            }
            Field::Int(3, 1) => return None, // unknown rank
            _ => {}
        }
    }
    Some(dims)
}

pub fn bundle_entry(b: &[u8]) -> Option<BundleEntry> {
    let mut e = BundleEntry {
        dtype: 0,
        shape: Vec::new(),
        shard_id: 0,
        offset: 0,
        size: 0,
        crc32c: None,
        sliced: false,
    };
    for f in fields(b)? {
        match f {
            Field::Int(1, v) => e.dtype = v,
            Field::Bytes(2, s) => e.shape = shape(s)?,
            Field::Int(3, v) => e.shard_id = v,
            Field::Int(4, v) => e.offset = v,
            Field::Int(5, v) => e.size = v,
            Field::Int(6, v) => e.crc32c = Some(v as u32),
            Field::Bytes(7, _) => e.sliced = true,
            _ => {}
        }
    }
    Some(e)
}

/// (num_shards, big_endian) of a `BundleHeaderProto`.
pub fn bundle_header(b: &[u8]) -> Option<(u64, bool)> {
    let (mut shards, mut big) = (1, false);
    for f in fields(b)? {
        match f {
            Field::Int(1, v) => shards = v,
            Field::Int(2, v) => big = v == 1,
            _ => {}
        }
    }
    Some((shards, big))
}
