//! Safetensors files exchanged with other frameworks. Unlike our own checkpoints
//! (`crate::checkpoint`, floats only), these carry integer tensors (`num_batches_tracked`,
//! labels) and may hold f16 weights, so tensors are plain `Vec<f32>` / `Vec<i64>` here,
//! row-major in the file's layout. Writes are atomic.

use crate::{Error, Result};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::BTreeMap;
use std::path::Path;

/// One tensor of a foreign file: floats of any width read as f32, integers as i64.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Named {
    pub shape: Vec<usize>,
    pub value: Value,
}

impl Named {
    pub fn f32(shape: &[usize], v: Vec<f32>) -> Self {
        Named {
            shape: shape.to_vec(),
            value: Value::F32(v),
        }
    }
    pub fn i64(shape: &[usize], v: Vec<i64>) -> Self {
        Named {
            shape: shape.to_vec(),
            value: Value::I64(v),
        }
    }
}

/// Tensors by name, sorted (reproducible files).
pub type Tensors = BTreeMap<String, Named>;

fn le<const N: usize>(b: &[u8]) -> [u8; N] {
    b.try_into().expect("chunk size")
}

/// Reads every tensor of a safetensors file (F64/F32/F16/BF16 as f32; I64/I32/U8 as i64).
pub fn read(path: &Path) -> Result<Tensors> {
    let bad = |msg: String| Error::Checkpoint {
        path: path.to_path_buf(),
        msg,
    };
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => bad("no such file".into()),
        _ => Error::io(path, e),
    })?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let mut out = Tensors::new();
    for (name, view) in st.tensors() {
        let d = view.data();
        let value = match view.dtype() {
            Dtype::F32 => Value::F32(
                d.chunks_exact(4)
                    .map(|b| f32::from_le_bytes(le(b)))
                    .collect(),
            ),
            Dtype::F64 => Value::F32(
                d.chunks_exact(8)
                    .map(|b| f64::from_le_bytes(le(b)) as f32)
                    .collect(),
            ),
            Dtype::F16 => Value::F32(
                d.chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes(le(b)).to_f32())
                    .collect(),
            ),
            Dtype::BF16 => Value::F32(
                d.chunks_exact(2)
                    .map(|b| half::bf16::from_le_bytes(le(b)).to_f32())
                    .collect(),
            ),
            Dtype::I64 => Value::I64(
                d.chunks_exact(8)
                    .map(|b| i64::from_le_bytes(le(b)))
                    .collect(),
            ),
            Dtype::I32 => Value::I64(
                d.chunks_exact(4)
                    .map(|b| i32::from_le_bytes(le(b)) as i64)
                    .collect(),
            ),
            Dtype::U8 => Value::I64(d.iter().map(|&b| b as i64).collect()),
            other => {
                return Err(bad(format!(
                    "tensor '{name}' has dtype {other:?}; expected a float or integer type"
                )))
            }
        };
        out.insert(
            name,
            Named {
                shape: view.shape().to_vec(),
                value,
            },
        );
    }
    Ok(out)
}

/// Writes `tensors` (f32 as F32, i64 as I64) with optional string metadata, atomically.
pub fn write(
    path: &Path,
    tensors: &Tensors,
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<()> {
    let bytes: Vec<(&String, Dtype, &[usize], Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| {
            let (dt, b) = match &t.value {
                Value::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                Value::I64(v) => (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            };
            (n, dt, t.shape.as_slice(), b)
        })
        .collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(n, dt, shape, b)| {
            TensorView::new(*dt, shape.to_vec(), b)
                .map(|v| (n.to_string(), v))
                .map_err(|e| Error::Config(format!("tensor '{n}': {e}")))
        })
        .collect::<Result<_>>()?;
    let data = safetensors::serialize(views, metadata)
        .map_err(|e| Error::Config(format!("safetensors: {e}")))?;
    crate::checkpoint::write_atomic(path, &data)
}
