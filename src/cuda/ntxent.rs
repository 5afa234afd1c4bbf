//! NT-Xent on the GPU (kernels/ntxent.cu): fused and tiled, the 2N x (2N + K) similarity matrix
//! is recomputed tile by tile and never stored. Semantics: src/ops/ntxent (mean over the 2N
//! anchors; positive of row i is row (i + N) mod 2N; queue rows are extra negatives).

use super::alloc::DeviceBuffer;
use super::device::Gpu;
use super::error::CudaCall;
use super::module::{Arg, Launch};
use super::ops::i32a;
use super::storage::{empty, gpu_of, ptr};
use crate::cuda::driver::cu;
use crate::{Result, Tensor};
use std::sync::Arc;

const OP: &str = "ntxent";
/// Anchors per block and gradient columns per block (BM and DC in kernels/ntxent.cu).
const ROWS: usize = 64;
const COLS: usize = 128;
const THREADS: u32 = 256;

/// Per-anchor log-sum-exp, positive logit and largest negative logit (fp32, on the device).
struct Stats {
    lse: DeviceBuffer,
    pos: DeviceBuffer,
    neg: DeviceBuffer,
}

/// Pointer and row count of the optional queue (a null pointer with no rows).
fn queue_args(queue: Option<&Tensor>) -> Result<(Arg, usize)> {
    match queue {
        Some(q) => Ok((ptr(q, OP)?, q.shape()[0])),
        None => Ok((Arg::Ptr(0), 0)),
    }
}

fn stats(gpu: &Arc<Gpu>, z: &Tensor, queue: Option<&Tensor>, inv_tau: f32) -> Result<Stats> {
    let (n2, d) = z.dims2(OP)?;
    let (q, nq) = queue_args(queue)?;
    let s = Stats {
        lse: DeviceBuffer::alloc(gpu, 4 * n2)?,
        pos: DeviceBuffer::alloc(gpu, 4 * n2)?,
        neg: DeviceBuffer::alloc(gpu, 4 * n2)?,
    };
    let args = [
        ptr(z, OP)?,
        q,
        i32a(n2),
        i32a(nq),
        i32a(d),
        Arg::F32(inv_tau),
        Arg::Ptr(s.lse.ptr()),
        Arg::Ptr(s.pos.ptr()),
        Arg::Ptr(s.neg.ptr()),
    ];
    let cfg = Launch {
        grid: (n2.div_ceil(ROWS) as u32, 1, 1),
        block: (THREADS, 1, 1),
    };
    gpu.launch_typed("ntxent_stats", z.dtype(), cfg, &args)?;
    Ok(s)
}

/// Returns (mean loss [], gradient of the mean loss w.r.t. `z`), both in `z`'s dtype.
pub fn forward(z: &Tensor, queue: Option<&Tensor>, tau: f64) -> Result<(Tensor, Tensor)> {
    let (n2, d) = z.dims2(OP)?;
    let gpu = gpu_of(z, OP)?;
    let inv_tau = (1.0 / tau) as f32;
    let st = stats(&gpu, z, queue, inv_tau)?;
    let (q, nq) = queue_args(queue)?;
    let dz = empty(&gpu, z.shape(), z.dtype())?;
    let args = [
        ptr(z, OP)?,
        q,
        i32a(n2),
        i32a(nq),
        i32a(d),
        Arg::F32(inv_tau),
        Arg::Ptr(st.lse.ptr()),
        Arg::F32((1.0 / (n2 as f64 * tau)) as f32),
        ptr(&dz, OP)?,
    ];
    let cfg = Launch {
        grid: (n2.div_ceil(ROWS) as u32, d.div_ceil(COLS) as u32, 1),
        block: (THREADS, 1, 1),
    };
    gpu.launch_typed("ntxent_grad", z.dtype(), cfg, &args)?;
    let loss = empty(&gpu, &[], z.dtype())?;
    let args = [
        Arg::Ptr(st.lse.ptr()),
        Arg::Ptr(st.pos.ptr()),
        i32a(n2),
        ptr(&loss, OP)?,
    ];
    gpu.launch_typed("ntxent_mean", z.dtype(), Launch::rows(1, 256), &args)?;
    Ok((loss, dz))
}

/// Fraction of anchors whose positive logit beats every negative strictly (ties miss).
pub fn accuracy(z: &Tensor, queue: Option<&Tensor>) -> Result<f64> {
    let n2 = z.dims2(OP)?.0;
    let gpu = gpu_of(z, OP)?;
    let st = stats(&gpu, z, queue, 1.0)?;
    let mut pos = vec![0f32; n2];
    let mut neg = vec![0f32; n2];
    let s = gpu.cu_stream();
    unsafe {
        cu::memcpy_dtoh_async(&mut pos, st.pos.ptr(), s).call("cuMemcpyDtoHAsync(pos)")?;
        cu::memcpy_dtoh_async(&mut neg, st.neg.ptr(), s).call("cuMemcpyDtoHAsync(neg)")?;
    }
    gpu.synchronize()?;
    let hits = pos.iter().zip(&neg).filter(|(p, n)| p > n).count();
    Ok(hits as f64 / n2 as f64)
}
