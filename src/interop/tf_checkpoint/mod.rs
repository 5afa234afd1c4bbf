//! TensorFlow checkpoints (the "tensor bundle" format of `tf.train.Saver` and
//! `tf.train.Checkpoint`), read without TensorFlow. A checkpoint `PREFIX` is `PREFIX.index`,
//! an SSTable ([`sstable`]) mapping each tensor name to a `BundleEntryProto` ([`proto`]; the
//! empty key holds the `BundleHeaderProto`), and `PREFIX.data-SSSSS-of-NNNNN`, the tensors'
//! raw little-endian bytes at the entries' offsets. Tensors are read one at a time (a release
//! checkpoint with optimizer slots and EMA copies is gigabytes), each checked against its
//! stored CRC32C.

pub mod crc32c;
pub mod proto;
pub mod snappy;
pub mod sstable;

use crate::{Error, Result};
use proto::BundleEntry;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// TensorFlow's `DataType` numbers for the float types we read.
const DT_FLOAT: u64 = 1;
const DT_DOUBLE: u64 = 2;
const DT_BFLOAT16: u64 = 14;
const DT_HALF: u64 = 19;

pub struct Bundle {
    prefix: PathBuf,
    shards: u64,
    entries: BTreeMap<String, BundleEntry>,
}

impl Bundle {
    /// Opens `prefix` (`model.ckpt-250228`; a path ending in `.index` is accepted too).
    pub fn open(prefix: &Path) -> Result<Self> {
        let text = prefix.to_string_lossy();
        let prefix = PathBuf::from(text.strip_suffix(".index").unwrap_or(&text).to_string());
        let index = PathBuf::from(format!("{}.index", prefix.display()));
        let bad = |msg: String| Error::Checkpoint {
            path: index.clone(),
            msg,
        };
        let bytes = std::fs::read(&index).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => bad(
                "no such file (give the checkpoint prefix, e.g. r50_1x_sk0/model.ckpt-250228)"
                    .into(),
            ),
            _ => Error::io(&index, e),
        })?;
        let (mut shards, mut entries) = (1, BTreeMap::new());
        for (key, value) in sstable::entries(&bytes).map_err(bad)? {
            if key.is_empty() {
                let (n, big) = proto::bundle_header(&value)
                    .ok_or_else(|| bad("malformed bundle header".into()))?;
                if big {
                    return Err(bad(
                        "written big-endian; only little-endian bundles are read".into(),
                    ));
                }
                shards = n.max(1);
                continue;
            }
            let name =
                String::from_utf8(key).map_err(|_| bad("a tensor name is not UTF-8".into()))?;
            let e = proto::bundle_entry(&value)
                .ok_or_else(|| bad(format!("malformed entry for tensor '{name}'")))?;
            entries.insert(name, e);
        }
        Ok(Bundle {
            prefix,
            shards,
            entries,
        })
    }

    pub fn entries(&self) -> &BTreeMap<String, BundleEntry> {
        &self.entries
    }

    fn data_path(&self, shard: u64) -> PathBuf {
        PathBuf::from(format!(
            "{}.data-{shard:05}-of-{:05}",
            self.prefix.display(),
            self.shards
        ))
    }

    /// Tensor `name` as f32 values (row-major in TensorFlow's layout), and its shape.
    pub fn read_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let e = self.entries.get(name).ok_or_else(|| Error::Checkpoint {
            path: self.prefix.clone(),
            msg: format!("no tensor '{name}' in the checkpoint"),
        })?;
        let path = self.data_path(e.shard_id);
        let bad = |msg: String| Error::Checkpoint {
            path: path.clone(),
            msg: format!("tensor '{name}': {msg}"),
        };
        if e.sliced {
            return Err(bad("a partitioned (sliced) variable; not supported".into()));
        }
        let width = match e.dtype {
            DT_FLOAT => 4,
            DT_DOUBLE => 8,
            DT_HALF | DT_BFLOAT16 => 2,
            d => {
                return Err(bad(format!(
                    "TensorFlow dtype {d} is not a float type we read"
                )))
            }
        };
        let n: usize = e.shape.iter().product();
        if e.size != (n * width) as u64 {
            return Err(bad(format!(
                "{} bytes stored for shape {:?}",
                e.size, e.shape
            )));
        }
        let mut f = std::fs::File::open(&path).map_err(|err| Error::io(&path, err))?;
        let mut buf = vec![0u8; n * width];
        f.seek(SeekFrom::Start(e.offset))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|err| {
                bad(format!(
                    "cannot read {} bytes at {}: {err}",
                    e.size, e.offset
                ))
            })?;
        if let Some(stored) = e.crc32c {
            if crc32c::mask(crc32c::extend(0, &buf)) != stored {
                return Err(bad("fails its CRC32C check (corrupt data file)".into()));
            }
        }
        let v = match e.dtype {
            DT_FLOAT => buf
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            DT_DOUBLE => buf
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32)
                .collect(),
            DT_HALF => buf
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            _ => buf
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        };
        Ok((e.shape.clone(), v))
    }
}
