//! TensorBoard event files, written by hand: TFRecord framing (length, masked CRC-32C of the
//! length, payload, masked CRC-32C of the payload) around `Event` protobufs carrying one scalar
//! `Summary.Value` each. Only the few protobuf fields TensorBoard reads for scalars are encoded
//! (Event: wall_time = 1, step = 2, file_version = 3, summary = 5; Summary: value = 1;
//! Value: tag = 1, simple_value = 2), so no protobuf or TensorFlow dependency is needed.
//! `read_scalars` decodes the same subset, for tests and tools.

use crate::{Error, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bitwise: event files are small.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// TFRecord's masking, so that a CRC of data containing CRCs stays well distributed.
pub fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(field: u32, data: &[u8], out: &mut Vec<u8>) {
    varint(((field << 3) | 2) as u64, out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

fn event(wall_time: f64, step: i64, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut e = vec![(1 << 3) | 1];
    e.extend_from_slice(&wall_time.to_le_bytes());
    if step != 0 {
        varint(2 << 3, &mut e);
        varint(step as u64, &mut e);
    }
    body(&mut e);
    e
}

/// One scalar event: `Event { wall_time, step, summary { value { tag, simple_value } } }`.
pub fn scalar_event(wall_time: f64, step: i64, tag: &str, value: f32) -> Vec<u8> {
    let mut v = Vec::new();
    bytes_field(1, tag.as_bytes(), &mut v);
    v.push((2 << 3) | 5);
    v.extend_from_slice(&value.to_le_bytes());
    let mut summary = Vec::new();
    bytes_field(1, &v, &mut summary);
    event(wall_time, step, |e| bytes_field(5, &summary, e))
}

/// `Event { session_log { status: START } }` at `step`: TensorBoard drops the events of the
/// directory from `step` on, which a resumed stage is about to log again.
pub fn session_start_event(wall_time: f64, step: i64) -> Vec<u8> {
    event(wall_time, step, |e| bytes_field(6, &[1 << 3, 1], e))
}

/// The first record of every event file.
pub fn version_event(wall_time: f64) -> Vec<u8> {
    event(wall_time, 0, |e| bytes_field(3, b"brain.Event:2", e))
}

pub fn frame(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc(payload).to_le_bytes());
    out
}

/// An open event file; every record is flushed as it is written.
pub struct EventWriter {
    path: PathBuf,
    file: File,
}

impl EventWriter {
    /// Creates `dir/events.out.tfevents.<seconds>.simclr.<pid>` (a resumed process adds a file
    /// of its own) and writes the version record.
    pub fn create(dir: &Path, wall_time: f64) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let name = format!(
            "events.out.tfevents.{}.simclr.{}",
            wall_time as u64,
            std::process::id()
        );
        let path = dir.join(name);
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut w = EventWriter { path, file };
        w.write(&version_event(wall_time))?;
        Ok(w)
    }

    fn write(&mut self, payload: &[u8]) -> Result<()> {
        self.file
            .write_all(&frame(payload))
            .and_then(|_| self.file.flush())
            .map_err(|e| Error::io(&self.path, e))
    }

    pub fn session_start(&mut self, wall_time: f64, step: i64) -> Result<()> {
        self.write(&session_start_event(wall_time, step))
    }

    pub fn scalar(&mut self, wall_time: f64, step: i64, tag: &str, value: f32) -> Result<()> {
        self.write(&scalar_event(wall_time, step, tag, value))
    }
}

/// One decoded scalar: (step, tag, value, wall_time).
pub type Scalar = (i64, String, f32, f64);

fn read_varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

/// The (field, wire type, payload) triples of one protobuf message.
fn fields(b: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let key = read_varint(b, &mut i)?;
        let n = match key & 7 {
            0 => {
                let start = i;
                read_varint(b, &mut i)?;
                out.push((key >> 3, &b[start..i]));
                continue;
            }
            1 => 8,
            5 => 4,
            2 => read_varint(b, &mut i)? as usize,
            _ => return None,
        };
        out.push((key >> 3, b.get(i..i + n)?));
        i += n;
    }
    Some(out)
}

/// Every scalar of an event file, checking both CRCs of every record.
pub fn read_scalars(path: &Path) -> Result<Vec<Scalar>> {
    let b = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |what: &str| Error::Config(format!("{}: {what}", path.display()));
    let (mut i, mut out) = (0usize, Vec::new());
    while i < b.len() {
        let len_b = b.get(i..i + 8).ok_or_else(|| bad("truncated length"))?;
        let n = u64::from_le_bytes(len_b.try_into().unwrap()) as usize;
        let crc = |at: usize| {
            b.get(at..at + 4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        };
        if crc(i + 8) != Some(masked_crc(len_b)) {
            return Err(bad("length CRC mismatch"));
        }
        let payload = b
            .get(i + 12..i + 12 + n)
            .ok_or_else(|| bad("truncated record"))?;
        if crc(i + 12 + n) != Some(masked_crc(payload)) {
            return Err(bad("payload CRC mismatch"));
        }
        i += 16 + n;
        let ev = fields(payload).ok_or_else(|| bad("malformed Event"))?;
        let (mut wall, mut step) = (0.0, 0i64);
        for (f, v) in &ev {
            match f {
                1 => wall = f64::from_le_bytes((*v).try_into().unwrap_or([0; 8])),
                2 => step = read_varint(v, &mut 0).unwrap_or(0) as i64,
                _ => {}
            }
        }
        for (_, summary) in ev.iter().filter(|(f, _)| *f == 5) {
            for (_, value) in fields(summary).ok_or_else(|| bad("malformed Summary"))? {
                let vf = fields(value).ok_or_else(|| bad("malformed Value"))?;
                let tag = vf.iter().find(|(f, _)| *f == 1).map(|(_, t)| t);
                let x = vf.iter().find(|(f, _)| *f == 2).map(|(_, x)| x);
                if let (Some(t), Some(x)) = (tag, x) {
                    let x = f32::from_le_bytes((*x).try_into().map_err(|_| bad("bad float"))?);
                    out.push((step, String::from_utf8_lossy(t).into_owned(), x, wall));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // RFC 3720's check value for the ASCII digits.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn scalars_round_trip_and_corruption_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path(), 1.5e9).unwrap();
        let want: Vec<Scalar> = (0..300)
            .map(|s| {
                (
                    s * 7,
                    format!("tag{}", s % 3),
                    (s as f32).sin() * 1e3,
                    1.5e9 + s as f64,
                )
            })
            .collect();
        for (s, t, v, wt) in &want {
            w.scalar(*wt, *s, t, *v).unwrap();
        }
        let path = w.path.clone();
        assert_eq!(read_scalars(&path).unwrap(), want);
        let mut b = std::fs::read(&path).unwrap();
        let last = b.len() - 6;
        b[last] ^= 1;
        std::fs::write(&path, &b).unwrap();
        assert!(read_scalars(&path).unwrap_err().to_string().contains("CRC"));
    }
}
