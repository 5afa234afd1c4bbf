//! Checkpoints in safetensors: every parameter and buffer of a [`ParamStore`] under its module
//! path, written atomically (temporary file, fsync, rename).

use crate::params::ParamStore;
use crate::{DType, Error, Result, Tensor};
use safetensors::tensor::{Dtype as StDtype, TensorView};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

fn st_dtype(d: DType) -> StDtype {
    match d {
        DType::F32 => StDtype::F32,
        DType::F64 => StDtype::F64,
        DType::BF16 => StDtype::BF16,
        DType::F16 => StDtype::F16,
    }
}

fn to_bytes(t: &Tensor) -> Result<(DType, Vec<u8>)> {
    let t = t.to_device(crate::Device::Cpu)?;
    let dtype = t.dtype();
    let bytes = match dtype {
        DType::F32 => t
            .cpu_slice::<f32>("checkpoint")?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::F64 => t
            .cpu_slice::<f64>("checkpoint")?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::BF16 => t
            .cpu_slice::<half::bf16>("checkpoint")?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::F16 => return Err(Error::dtype("checkpoint", "f16 tensors are not stored")),
    };
    Ok((dtype, bytes))
}

/// Parses a safetensors buffer into CPU tensors (f32, f64 or bf16 as stored).
pub fn read_tensors(bytes: &[u8], path: &Path) -> Result<HashMap<String, Tensor>> {
    let bad = |msg: String| Error::Checkpoint {
        path: path.to_path_buf(),
        msg,
    };
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let data = view.data();
        let shape = view.shape().to_vec();
        let t = match view.dtype() {
            StDtype::F32 => Tensor::from_vec(
                data.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect::<Vec<_>>(),
                &shape,
            )?,
            StDtype::F64 => Tensor::from_vec(
                data.chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                    .collect::<Vec<_>>(),
                &shape,
            )?,
            StDtype::BF16 => Tensor::from_vec(
                data.chunks_exact(2)
                    .map(|b| half::bf16::from_le_bytes([b[0], b[1]]))
                    .collect::<Vec<_>>(),
                &shape,
            )?,
            StDtype::I64 => Tensor::from_vec(
                data.chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64)
                    .collect::<Vec<_>>(),
                &shape,
            )?,
            other => {
                return Err(bad(format!(
                    "tensor '{name}' has unsupported dtype {other:?}"
                )))
            }
        };
        out.insert(name, t);
    }
    Ok(out)
}

/// Parses a safetensors buffer of weights: as [`read_tensors`], but integer tensors and
/// non-finite values (a diverged or corrupt run) are refused, naming the tensor.
pub fn read_weights(bytes: &[u8], path: &Path) -> Result<HashMap<String, Tensor>> {
    let bad = |msg: String| Error::Checkpoint {
        path: path.to_path_buf(),
        msg,
    };
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    for (name, view) in st.tensors() {
        if !matches!(view.dtype(), StDtype::F32 | StDtype::F64 | StDtype::BF16) {
            return Err(bad(format!(
                "tensor '{name}' has dtype {:?}; weights must be F32, F64 or BF16",
                view.dtype()
            )));
        }
    }
    let tensors = read_tensors(bytes, path)?;
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    for name in names {
        let v = tensors[name].to_vec_f64()?;
        if let Some(x) = v.iter().find(|x| !x.is_finite()) {
            let n = v.iter().filter(|x| !x.is_finite()).count();
            return Err(bad(format!(
                "tensor '{name}' holds {n} non-finite values (e.g. {x}) of {}: written by a \
                 diverged run or corrupt; every weight must be finite",
                v.len()
            )));
        }
    }
    Ok(tensors)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed to
/// disk, then renamed over the target. A crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::Config(format!("{} is not a file path", path.display())))?;
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        // The rename itself is durable only once the directory is synced.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Serialises named tensors to safetensors bytes, names sorted for reproducible files.
pub fn serialize(
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let mut owned: Vec<(String, DType, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let (dt, bytes) = to_bytes(t)?;
        owned.push((name.clone(), dt, t.shape().to_vec(), bytes));
    }
    owned.sort_by(|a, b| a.0.cmp(&b.0));
    let views: Vec<(String, TensorView)> = owned
        .iter()
        .map(|(n, dt, shape, bytes)| {
            TensorView::new(st_dtype(*dt), shape.clone(), bytes)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Config(format!("tensor '{n}': {e}")))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, metadata).map_err(|e| Error::Config(format!("safetensors: {e}")))
}

/// Saves every allocated parameter and buffer of `store`.
pub fn save(
    store: &ParamStore,
    path: &Path,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let tensors: Vec<(String, Tensor)> = store
        .ids()
        .map(|id| Ok((store.name(id).to_string(), store.value(id)?.clone())))
        .collect::<Result<_>>()?;
    write_atomic(path, &serialize(&tensors, metadata)?)
}

/// Reads a checkpoint file; a missing file is a checkpoint error naming the path.
fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Checkpoint {
            path: path.to_path_buf(),
            msg: "no such file".into(),
        },
        _ => Error::io(path, e),
    })
}

/// The store's tensors whose names satisfy `wanted`, read from `path`, checked (present, same
/// shape) and converted to the store's dtype and device, but not yet written into the store;
/// and the file's remaining tensors. Nothing is changed until every tensor has been checked.
type Selected = (
    Vec<(crate::params::ParamId, Tensor)>,
    HashMap<String, Tensor>,
);

fn select(store: &ParamStore, path: &Path, wanted: impl Fn(&str) -> bool) -> Result<Selected> {
    let mut tensors = read_weights(&read_file(path)?, path)?;
    let bad = |msg: String| Error::Checkpoint {
        path: path.to_path_buf(),
        msg,
    };
    let mut updates = Vec::with_capacity(store.len());
    for id in store.ids().filter(|&id| wanted(store.name(id))) {
        let name = store.name(id);
        let shape = &store.entry(id).shape;
        let t = tensors
            .remove(name)
            .ok_or_else(|| bad(format!("missing tensor '{name}' (shape {shape:?})")))?;
        if t.shape() != shape.as_slice() {
            return Err(bad(format!(
                "tensor '{name}' has shape {:?} in the file but {shape:?} in the model",
                t.shape()
            )));
        }
        let device = store
            .value(id)
            .map(|v| v.device())
            .unwrap_or(crate::Device::Cpu);
        updates.push((id, t.to_dtype(store.dtype())?.to_device(device)?));
    }
    Ok((updates, tensors))
}

/// Loads a checkpoint into `store`: every tensor of the store must be present with its shape,
/// and the file must hold nothing else. Values are converted to the store's dtype and device.
pub fn load(store: &mut ParamStore, path: &Path) -> Result<()> {
    let (updates, rest) = select(store, path, |_| true)?;
    if let Some(extra) = rest.keys().min() {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            msg: format!(
                "unexpected tensor '{extra}' (shape {:?}) that the model does not have",
                rest[extra].shape()
            ),
        });
    }
    for (id, t) in updates {
        store.set_value(id, t)?;
    }
    Ok(())
}

/// The string metadata stored in a safetensors file's header.
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(&read_file(path)?).map_err(|e| {
        Error::Checkpoint {
            path: path.to_path_buf(),
            msg: format!("not a valid safetensors file: {e}"),
        }
    })?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// Loads the tensors whose names satisfy `wanted` (every one must be in the file, with its
/// shape); the store's other tensors keep their values and the file's other tensors are
/// ignored. Used to start fine-tuning from a pretrained encoder and head.
pub fn load_matching(
    store: &mut ParamStore,
    path: &Path,
    wanted: impl Fn(&str) -> bool,
) -> Result<usize> {
    let (updates, _) = select(store, path, wanted)?;
    let n = updates.len();
    for (id, t) in updates {
        store.set_value(id, t)?;
    }
    Ok(n)
}
