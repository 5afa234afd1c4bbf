//! Multi-tensor LARS on the GPU: one launch for the norms of every tensor, one for every
//! update (kernels/multi_tensor.cu). Same rule as src/optim/lars.rs.
//!
//! Weights and velocities are updated in place, so their addresses stay put from step to step
//! and the tensor table ([`LarsTables`]) stays resident on the device: it is uploaded when the
//! set of tensors, their addresses or their settings change (the first step, after a resume),
//! and otherwise only its gradient pointers are rebound, by launches that carry them as
//! parameters. A steady-state step therefore copies nothing to the device and never waits.

use super::device_lr::LearningRate;
use super::table::{chunks, i64_field, int_field, pair, upload, CHUNK};
use crate::cuda::alloc::DeviceBuffer;
use crate::cuda::dims::dim;
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut, KernelDtype, LarsTensor};
use crate::cuda::module::Launch;
use crate::cuda::storage::gpu_of;
use crate::cuda::CudaStorage;
use crate::{DType, Error, Result, Tensor};

const OP: &str = "lars_multi_tensor_step";
/// Words per table row (LarsTensor).
const ROW: usize = 7;
/// Gradient pointers per bind launch (MT_BIND in kernels/multi_tensor.cu).
const BIND: usize = 16;

/// One parameter tensor of a step: fp32 weight and velocity (both updated in place; the
/// velocity holds zeros before the first step), gradient f32 or bf16.
pub struct LarsSlot<'a> {
    pub w: &'a mut Tensor,
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

/// A device address to write through (copying first if the buffer is shared).
fn ptr_mut(t: &mut Tensor) -> Result<u64> {
    match CudaStorage::of_mut(t.storage_mut()) {
        Some(st) => st.ptr_mut(),
        None => Err(Error::device(OP, "weight or velocity is not on the GPU")),
    }
}

/// The resident table of one gradient dtype: its rows as uploaded (gradient words zeroed, the
/// key that says whether it still applies), the chunk owners and the partial sums.
struct Resident {
    dtype: DType,
    key: Vec<u64>,
    table: DeviceBuffer,
    owners: DeviceBuffer,
    partials: DeviceBuffer,
    chunks: usize,
}

/// The device tables a LARS optimizer keeps between steps (empty until the first step).
#[derive(Default)]
pub struct LarsTables {
    resident: Vec<Resident>,
}

/// One LARS step over all `slots`, in place. Slots are grouped by gradient dtype: per dtype
/// present, the gradient binds (one launch per 16 tensors) and a pair of launches.
pub fn lars_multi_tensor_step(
    slots: &mut [LarsSlot],
    lr: LearningRate,
    momentum: f64,
    eta: f64,
    tables: &mut LarsTables,
) -> Result<()> {
    let Some(first) = slots.first() else {
        return Ok(());
    };
    let gpu = gpu_of(&*first.w, OP)?;
    for s in slots.iter() {
        check(s)?;
        if !matches!(s.g.dtype(), DType::F32 | DType::BF16) {
            return Err(Error::dtype(OP, "gradients must be f32 or bf16"));
        }
    }
    for dt in [DType::F32, DType::BF16] {
        let group: Vec<usize> = (0..slots.len())
            .filter(|&i| slots[i].g.dtype() == dt)
            .collect();
        if group.is_empty() {
            continue;
        }
        let sizes: Vec<usize> = group.iter().map(|&i| slots[i].w.numel()).collect();
        let (first_chunk, owner) = chunks(&sizes)?;
        if owner.is_empty() {
            continue; // only empty tensors
        }
        let mut key = Vec::with_capacity(ROW * group.len());
        for (k, &i) in group.iter().enumerate() {
            let s = &mut slots[i];
            let wd = if s.excluded { 0.0 } else { s.weight_decay };
            let w = ptr_mut(s.w)?;
            key.extend([
                w,
                w,
                0, // the gradient: bound every step
                ptr_mut(s.v)?,
                i64_field(sizes[k], OP)?,
                pair(first_chunk[k], int_field(sizes[k].div_ceil(CHUNK), OP)?),
                pair((wd as f32).to_bits(), u32::from(s.excluded)),
            ]);
        }
        let at = tables.resident.iter().position(|r| r.dtype == dt);
        let r = match at {
            Some(j) if tables.resident[j].key == key => &tables.resident[j],
            _ => {
                let (table, owners) = upload(&gpu, &key, &owner)?;
                let fresh = Resident {
                    dtype: dt,
                    key,
                    table,
                    owners,
                    partials: DeviceBuffer::alloc(&gpu, 8 * owner.len())?,
                    chunks: owner.len(),
                };
                tables.resident.retain(|r| r.dtype != dt);
                tables.resident.push(fresh);
                tables.resident.last().expect("just pushed")
            }
        };
        let grads: Vec<&Tensor> = group.iter().map(|&i| slots[i].g).collect();
        with_dtype!(dt, OP, T => bind_grads::<T>(&gpu, r, &grads))?;
        let cfg = Launch::rows(r.chunks, 256);
        // The resident table (one LarsTensor row per tensor of this dtype, gradients bound
        // above), one int per chunk, and two f32 partial sums per chunk, written by lars_norms
        // and read by lars_update.
        let (t, o, p) = unsafe {
            (
                DevPtr::<LarsTensor>::from_raw(r.table.ptr()),
                DevPtr::<i32>::from_raw(r.owners.ptr()),
                DevPtrMut::<f32>::from_raw(r.partials.ptr()),
            )
        };
        // The rate as a parameter (lr_table null), or read from the device schedule.
        let (value, (table, step, steps)) = match lr {
            LearningRate::Host(v) => (v as f32, (DevPtr::null(), DevPtr::null(), 0)),
            LearningRate::Device(d) => {
                if d.gpu().ordinal != gpu.ordinal {
                    return Err(Error::device(OP, "the schedule is on another GPU"));
                }
                (0.0, d.args()?)
            }
        };
        let (m, eta) = (momentum as f32, eta as f32);
        with_dtype!(dt, OP, T => {
            k::lars_norms::<T>(&gpu, cfg, t, o, p)?;
            k::lars_update::<T>(&gpu, cfg, t, o, p.as_const(), value, table, step, steps, m, eta)
        })?;
    }
    Ok(())
}

/// Writes each gradient's address into its row of the resident table, 16 per launch.
fn bind_grads<T: KernelDtype>(
    gpu: &std::sync::Arc<crate::cuda::Gpu>,
    r: &Resident,
    grads: &[&Tensor],
) -> Result<()> {
    // The resident table's rows, one per tensor of `grads`.
    let ts = unsafe { DevPtrMut::<LarsTensor>::from_raw(r.table.ptr()) };
    for (b, batch) in grads.chunks(BIND).enumerate() {
        let mut g = [DevPtr::<T>::null(); BIND];
        for (slot, t) in g.iter_mut().zip(batch) {
            *slot = DevPtr::of(t, OP)?;
        }
        let first = dim::<i32>(b * BIND, "lars: tensors")?;
        let count = dim::<i32>(batch.len(), "lars: tensors")?;
        k::lars_bind_grads::<T>(
            gpu,
            Launch::rows(1, 32),
            ts,
            first,
            count,
            g[0],
            g[1],
            g[2],
            g[3],
            g[4],
            g[5],
            g[6],
            g[7],
            g[8],
            g[9],
            g[10],
            g[11],
            g[12],
            g[13],
            g[14],
            g[15],
        )?;
    }
    Ok(())
}
