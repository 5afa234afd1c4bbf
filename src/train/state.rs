//! Resumable training state, written atomically at the end of every epoch to
//! `<stage>.state.safetensors`: parameters and BN statistics (`param.*`), LARS velocities
//! (`lars.velocity.*`), stage extras (EMA network `ema.*`, memory queue `queue`), and the
//! position. The data order and augmentations are functions of (seed, epoch, index), so the
//! seed and the epoch are the whole random state.

use crate::checkpoint;
use crate::optim::Lars;
use crate::params::ParamStore;
use crate::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub epochs_done: usize,
    pub step: usize,
    pub seed: u64,
    /// Memory queue: rows filled and the next row to overwrite.
    pub queue_filled: usize,
    pub queue_next: usize,
    /// The settings the run depends on (`resume_check::fingerprint`), refused if changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
}

pub fn save(
    path: &Path,
    store: &ParamStore,
    lars: &Lars,
    extra: Vec<(String, Tensor)>,
    pos: &Position,
) -> Result<()> {
    // A diverged run keeps its last finite state rather than overwrite it with NaN.
    let stage = path
        .file_name()
        .map(|n| n.to_string_lossy().replace(".state.safetensors", ""))
        .unwrap_or_default();
    super::guard::check_params(&stage, pos.step, store)?;
    let mut tensors: Vec<(String, Tensor)> = store
        .ids()
        .map(|id| {
            Ok((
                format!("param.{}", store.name(id)),
                store.value(id)?.clone(),
            ))
        })
        .collect::<Result<_>>()?;
    tensors.extend(lars.state(store));
    tensors.extend(extra);
    let meta = HashMap::from([(
        "position".to_string(),
        serde_json::to_string(pos).expect("position serialises"),
    )]);
    checkpoint::write_atomic(path, &checkpoint::serialize(&tensors, Some(meta))?)
}

/// Restores `store` and `lars` and returns the position and the remaining named tensors.
pub fn load(
    path: &Path,
    store: &mut ParamStore,
    lars: &mut Lars,
    seed: u64,
) -> Result<(Position, HashMap<String, Tensor>)> {
    let bad = |msg: String| Error::Checkpoint {
        path: path.to_path_buf(),
        msg,
    };
    let pos: Position = checkpoint::read_metadata(path)?
        .get("position")
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| bad("not a training-state file (no position)".into()))?;
    if pos.seed != seed {
        return Err(bad(format!(
            "was written with --seed {}, not {seed}: resuming would change the run",
            pos.seed
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut tensors = checkpoint::read_weights(&bytes, path)?;
    for id in store.ids() {
        let name = format!("param.{}", store.name(id));
        let t = tensors
            .remove(&name)
            .ok_or_else(|| bad(format!("missing tensor '{name}'")))?;
        if t.shape() != store.entry(id).shape.as_slice() {
            return Err(bad(format!(
                "'{name}' has shape {:?}, the model {:?}",
                t.shape(),
                store.entry(id).shape
            )));
        }
        let device = store.value(id)?.device();
        store.set_value(id, t.to_dtype(store.dtype())?.to_device(device)?)?;
    }
    lars.load_state(store, &tensors)?;
    tensors.retain(|k, _| !k.starts_with(crate::optim::lars::VELOCITY_PREFIX));
    Ok((pos, tensors))
}

/// Copies `prefix.*` tensors into a store (the EMA network on resume).
pub fn restore_prefixed(
    store: &mut ParamStore,
    tensors: &HashMap<String, Tensor>,
    prefix: &str,
    path: &Path,
) -> Result<()> {
    for id in store.ids() {
        let name = format!("{prefix}.{}", store.name(id));
        let t = tensors.get(&name).ok_or_else(|| Error::Checkpoint {
            path: path.to_path_buf(),
            msg: format!("missing tensor '{name}'"),
        })?;
        let device = store.value(id)?.device();
        store.set_value(id, t.to_dtype(store.dtype())?.to_device(device)?)?;
    }
    Ok(())
}

/// All tensors of a store under `prefix.`.
pub fn prefixed(store: &ParamStore, prefix: &str) -> Result<Vec<(String, Tensor)>> {
    store
        .ids()
        .map(|id| {
            Ok((
                format!("{prefix}.{}", store.name(id)),
                store.value(id)?.clone(),
            ))
        })
        .collect()
}
