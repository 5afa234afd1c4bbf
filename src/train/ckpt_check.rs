//! A checkpoint's metadata is untrusted: before a network is built from it (which allocates and
//! initialises every weight, 90 s for `r200_4x_sk1`), the tensor names and shapes in the file's
//! header are compared with those of the described network, built in a shape-only store.

use super::model::{Classifier, ModelMeta, SimClrNet};
use crate::params::ParamStore;
use crate::{Error, Result};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Largest header accepted (safetensors' own limit is 100 MB).
const MAX_HEADER: u64 = 100_000_000;

/// Names and shapes of the tensors in a safetensors header, read without the data.
pub fn header_shapes(path: &Path) -> Result<HashMap<String, Vec<usize>>> {
    let bad = |msg: String| Error::Checkpoint {
        path: path.to_path_buf(),
        msg,
    };
    let mut f = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => bad("no such file".into()),
        _ => Error::io(path, e),
    })?;
    let file_len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|_| bad("not a valid safetensors file: shorter than its header".into()))?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER || n > file_len.saturating_sub(8) {
        return Err(bad(format!(
            "not a valid safetensors file: header of {n} bytes in a {file_len}-byte file"
        )));
    }
    let mut text = vec![0u8; n as usize];
    f.read_exact(&mut text)
        .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let json: HashMap<String, serde_json::Value> = serde_json::from_slice(&text)
        .map_err(|e| bad(format!("not a valid safetensors file: header: {e}")))?;
    let mut out = HashMap::new();
    for (name, v) in json {
        if name == "__metadata__" {
            continue;
        }
        let shape = v
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|a| {
                a.iter()
                    .map(|d| d.as_u64().map(|d| d as usize))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| bad(format!("tensor '{name}' has no valid shape in the header")))?;
        out.insert(name, shape);
    }
    Ok(out)
}

/// The names and shapes of the network `meta` describes (a classifier unless it is a
/// pretraining checkpoint), computed without allocating a weight.
pub fn expected_shapes(meta: &ModelMeta) -> Result<Vec<(String, Vec<usize>)>> {
    let mut store = ParamStore::meta();
    if meta.stage == super::pretrain::STAGE {
        SimClrNet::new(&mut store, meta.clone())?;
    } else {
        Classifier::new(&mut store, meta.clone())?;
    }
    Ok(store
        .entries()
        .iter()
        .map(|e| (e.name.clone(), e.shape.clone()))
        .collect())
}

/// Checks that the file holds every tensor of `meta`'s network that `wanted` selects, with its
/// shape, and (when `exact`) nothing else; reads only the header.
pub fn check(
    path: &Path,
    meta: &ModelMeta,
    wanted: impl Fn(&str) -> bool,
    exact: bool,
) -> Result<()> {
    let bad = |msg: String| Error::Checkpoint {
        path: path.to_path_buf(),
        msg,
    };
    let mut header = header_shapes(path)?;
    for (name, shape) in expected_shapes(meta)? {
        let found = header.remove(&name);
        if !wanted(&name) {
            continue;
        }
        match found {
            None => {
                return Err(bad(format!(
                    "its metadata says {} but tensor '{name}' (shape {shape:?}) is missing",
                    meta.model
                )))
            }
            Some(s) if s != shape => {
                return Err(bad(format!(
                    "its metadata says {} but tensor '{name}' has shape {s:?}, not {shape:?}",
                    meta.model
                )))
            }
            Some(_) => {}
        }
    }
    if exact {
        if let Some(extra) = header.keys().min() {
            return Err(bad(format!(
                "unexpected tensor '{extra}' (shape {:?}) that a {} network does not have",
                header[extra], meta.model
            )));
        }
    }
    Ok(())
}
