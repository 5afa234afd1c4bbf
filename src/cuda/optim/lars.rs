//! Multi-tensor LARS on the GPU: one launch for the norms of every tensor, one for every
//! update (kernels/multi_tensor.cu). Same rule as src/optim/lars.rs.

use super::table::{chunks, i64_field, int_field, pair, upload};
use crate::cuda::alloc::DeviceBuffer;
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut, LarsTensor};
use crate::cuda::module::Launch;
use crate::cuda::storage::{empty, gpu_of, storage};
use crate::tensor::Storage;
use crate::{DType, Error, Result, Tensor};

const OP: &str = "lars_multi_tensor_step";

/// One parameter tensor of a step: fp32 weight, gradient (f32 or bf16), fp32 velocity
/// (updated in place; zeros on the first step).
pub struct LarsSlot<'a> {
    pub w: &'a Tensor,
    pub g: &'a Tensor,
    pub v: &'a mut Tensor,
    /// Weight decay of this tensor (ignored when excluded).
    pub weight_decay: f64,
    /// Excluded tensors get neither weight decay nor the trust ratio.
    pub excluded: bool,
}

fn check(s: &LarsSlot) -> Result<()> {
    if s.w.dtype() != DType::F32 || s.v.dtype() != DType::F32 {
        return Err(Error::dtype(
            OP,
            "weights and velocities must be f32 (master weights)",
        ));
    }
    if s.g.shape() != s.w.shape() || s.v.shape() != s.w.shape() {
        return Err(Error::shape(
            OP,
            format!(
                "weight {:?}, gradient {:?}, velocity {:?}",
                s.w.shape(),
                s.g.shape(),
                s.v.shape()
            ),
        ));
    }
    Ok(())
}

/// One LARS step over all `slots`; returns the new weights in slot order (the old ones are
/// left untouched, so a store can swap them in). Slots are grouped by gradient dtype: one
/// pair of launches per dtype present.
pub fn lars_multi_tensor_step(
    slots: &mut [LarsSlot],
    lr: f64,
    momentum: f64,
    eta: f64,
) -> Result<Vec<Tensor>> {
    let Some(first) = slots.first() else {
        return Ok(Vec::new());
    };
    let gpu = gpu_of(first.w, OP)?;
    let mut out: Vec<Option<Tensor>> = vec![None; slots.len()];
    for dt in [DType::F32, DType::BF16] {
        let group: Vec<usize> = (0..slots.len())
            .filter(|&i| slots[i].g.dtype() == dt)
            .collect();
        if group.is_empty() {
            continue;
        }
        let sizes: Vec<usize> = group.iter().map(|&i| slots[i].w.numel()).collect();
        let (first_chunk, owner) = chunks(&sizes)?;
        let mut words = Vec::with_capacity(7 * group.len());
        for (k, &i) in group.iter().enumerate() {
            let s = &mut slots[i];
            check(s)?;
            let w_out = empty(&gpu, s.w.shape(), DType::F32)?;
            let v = match s.v.storage_mut() {
                Storage::Cuda(st) => st.ptr_mut()?,
                _ => return Err(Error::device(OP, "velocity is not on the GPU")),
            };
            let wd = if s.excluded { 0.0 } else { s.weight_decay };
            words.extend([
                storage(&w_out, OP)?.ptr(),
                storage(s.w, OP)?.ptr(),
                storage(s.g, OP)?.ptr(),
                v,
                i64_field(sizes[k], OP)?,
                pair(
                    first_chunk[k],
                    int_field(sizes[k].div_ceil(super::table::CHUNK), OP)?,
                ),
                pair((wd as f32).to_bits(), u32::from(s.excluded)),
            ]);
            out[i] = Some(w_out);
        }
        if owner.is_empty() {
            continue; // only empty tensors
        }
        let (table, owners) = upload(&gpu, &words, &owner)?;
        let partials = DeviceBuffer::alloc(&gpu, 8 * owner.len())?;
        let cfg = Launch::rows(owner.len(), 256);
        // One LarsTensor row per tensor (gradients of dtype `dt`), one int per chunk, and two
        // f32 partial sums per chunk, written by lars_norms and read by lars_update.
        let (t, o, p) = unsafe {
            (
                DevPtr::<LarsTensor>::from_raw(table.ptr()),
                DevPtr::<i32>::from_raw(owners.ptr()),
                DevPtrMut::<f32>::from_raw(partials.ptr()),
            )
        };
        let (lr, m, eta) = (lr as f32, momentum as f32, eta as f32);
        with_dtype!(dt, OP, T => {
            k::lars_norms::<T>(&gpu, cfg, t, o, p)?;
            k::lars_update::<T>(&gpu, cfg, t, o, p.as_const(), lr, m, eta)
        })?;
    }
    out.into_iter()
        .map(|t| t.ok_or_else(|| Error::dtype(OP, "gradients must be f32 or bf16")))
        .collect()
}
