//! A minimal TensorFlow tensor-bundle writer for tests: f32 tensors, one shard, one
//! uncompressed SSTable data block. It lets a test write a release-format checkpoint of a full
//! named architecture, too big to commit; the reader itself is checked against checkpoints
//! TensorFlow wrote (tests/fixtures/simclr_tf).

#![allow(dead_code)]

use simclr::interop::tf_checkpoint::crc32c;
use std::path::Path;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field_varint(out: &mut Vec<u8>, number: u64, v: u64) {
    varint(out, number << 3);
    varint(out, v);
}

fn field_bytes(out: &mut Vec<u8>, number: u64, b: &[u8]) {
    varint(out, (number << 3) | 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A block of entries without prefix sharing, one restart point, and its trailer.
fn block(file: &mut Vec<u8>, entries: &[(Vec<u8>, Vec<u8>)]) -> (u64, u64) {
    let start = file.len();
    let mut b = Vec::new();
    for (k, v) in entries {
        varint(&mut b, 0);
        varint(&mut b, k.len() as u64);
        varint(&mut b, v.len() as u64);
        b.extend_from_slice(k);
        b.extend_from_slice(v);
    }
    b.extend(0u32.to_le_bytes());
    b.extend(1u32.to_le_bytes());
    let crc = crc32c::mask(crc32c::extend(crc32c::extend(0, &b), &[0]));
    file.extend_from_slice(&b);
    file.push(0);
    file.extend(crc.to_le_bytes());
    (start as u64, b.len() as u64)
}

/// Writes `PREFIX.index` and `PREFIX.data-00000-of-00001` holding `tensors` (name, shape,
/// row-major f32 values).
pub fn write(prefix: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let mut sorted: Vec<&(String, Vec<usize>, Vec<f32>)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut data = Vec::new();
    let mut header = Vec::new();
    field_varint(&mut header, 1, 1);
    let mut entries = vec![(Vec::new(), header)];
    for (name, shape, values) in sorted {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut shape_proto = Vec::new();
        for &d in shape {
            let mut dim = Vec::new();
            field_varint(&mut dim, 1, d as u64);
            field_bytes(&mut shape_proto, 2, &dim);
        }
        let mut e = Vec::new();
        field_varint(&mut e, 1, 1);
        field_bytes(&mut e, 2, &shape_proto);
        field_varint(&mut e, 4, data.len() as u64);
        field_varint(&mut e, 5, bytes.len() as u64);
        varint(&mut e, (6 << 3) | 5);
        e.extend(crc32c::mask(crc32c::extend(0, &bytes)).to_le_bytes());
        data.extend_from_slice(&bytes);
        entries.push((name.as_bytes().to_vec(), e));
    }
    let mut file = Vec::new();
    let last_key = entries.last().unwrap().0.clone();
    let (off, size) = block(&mut file, &entries);
    let mut handle = Vec::new();
    varint(&mut handle, off);
    varint(&mut handle, size);
    let meta = block(&mut file, &[]);
    let index = block(&mut file, &[(last_key, handle)]);
    let mut footer = Vec::new();
    for v in [meta.0, meta.1, index.0, index.1] {
        varint(&mut footer, v);
    }
    footer.resize(40, 0);
    footer.extend(0xdb47_7524_8b80_fb57u64.to_le_bytes());
    file.extend(footer);
    let p = prefix.display();
    std::fs::write(format!("{p}.index"), file).unwrap();
    std::fs::write(format!("{p}.data-00000-of-00001"), data).unwrap();
}
