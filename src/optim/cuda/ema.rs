//! Multi-tensor EMA on the GPU, one launch for every tensor of the momentum network
//! (kernels/multi_tensor.cu): `out = m·target + (1 − m)·online`, m per tensor (0 copies).

use super::table::{chunks, i64_field, upload};
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, EmaTensor};
use crate::cuda::module::Launch;
use crate::cuda::storage::{empty, gpu_of, storage};
use crate::{Error, Result, Tensor};

const OP: &str = "ema_multi_tensor_update";

/// Returns the new target tensors, in the order of `items` = (target, online, momentum). All
/// tensors share one dtype (f32 or bf16) and one GPU.
pub fn ema_multi_tensor_update(items: &[(&Tensor, &Tensor, f64)]) -> Result<Vec<Tensor>> {
    let Some(&(t0, _, _)) = items.first() else {
        return Ok(Vec::new());
    };
    let (gpu, dt) = (gpu_of(t0, OP)?, t0.dtype());
    let sizes: Vec<usize> = items.iter().map(|(t, _, _)| t.numel()).collect();
    let (first_chunk, owner) = chunks(&sizes)?;
    let mut words = Vec::with_capacity(5 * items.len());
    let mut out = Vec::with_capacity(items.len());
    for (k, &(t, o, m)) in items.iter().enumerate() {
        if t.dtype() != dt || o.dtype() != dt || t.shape() != o.shape() {
            return Err(Error::shape(
                OP,
                format!(
                    "target {:?} {} and online {:?} {} (all tensors need one dtype)",
                    t.shape(),
                    t.dtype().name(),
                    o.shape(),
                    o.dtype().name()
                ),
            ));
        }
        let new = empty(&gpu, t.shape(), dt)?;
        words.extend([
            storage(&new, OP)?.ptr(),
            storage(t, OP)?.ptr(),
            storage(o, OP)?.ptr(),
            i64_field(sizes[k], OP)?,
            super::table::pair((m as f32).to_bits(), first_chunk[k]),
        ]);
        out.push(new);
    }
    if !owner.is_empty() {
        let (table, owners) = upload(&gpu, &words, &owner)?;
        // One EmaTensor row per tensor and one int per chunk, built above for dtype `dt`.
        let (ts, chunk_tensor) = unsafe {
            (
                DevPtr::<EmaTensor>::from_raw(table.ptr()),
                DevPtr::<i32>::from_raw(owners.ptr()),
            )
        };
        let cfg = Launch::rows(owner.len(), 256);
        with_dtype!(dt, OP, T => k::ema_update::<T>(&gpu, cfg, ts, chunk_tensor))?;
    }
    Ok(out)
}
