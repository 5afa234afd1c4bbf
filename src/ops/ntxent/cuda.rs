//! NT-Xent on the GPU (kernels/ntxent.cu): fused and tiled, the 2N x (2N + K) similarity matrix
//! is recomputed tile by tile and never stored. Semantics: src/ops/ntxent (mean over the 2N
//! anchors; positive of row i is row (i + N) mod 2N; queue rows are extra negatives).

use super::{Accuracy, NtXentKernels};
use crate::cuda::alloc::DeviceBuffer;
use crate::cuda::device::Gpu;
use crate::cuda::dims::dim;
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut, KernelDtype};
use crate::cuda::module::Launch;
use crate::cuda::storage::{empty, gpu_of};
use crate::ops::backend::Cuda;
use crate::ops::elementwise::scale_forward;
use crate::{DType, Result, Tensor};
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

/// Pointer and row count of the optional queue (a null pointer with no rows); the queue must
/// have z's dtype.
fn queue_args<T: KernelDtype>(queue: Option<&Tensor>) -> Result<(DevPtr<T>, i32)> {
    match queue {
        Some(q) => Ok((
            DevPtr::of(q, OP)?,
            dim::<i32>(q.shape()[0], "ntxent: queue rows")?,
        )),
        None => Ok((DevPtr::null(), 0)),
    }
}

/// (2N, d) of z as the kernels' `int`s.
fn sizes(n2: usize, d: usize) -> Result<(i32, i32)> {
    Ok((
        dim::<i32>(n2, "ntxent: rows")?,
        dim::<i32>(d, "ntxent: width")?,
    ))
}

fn stats(gpu: &Arc<Gpu>, z: &Tensor, queue: Option<&Tensor>, inv_tau: f32) -> Result<Stats> {
    let (n2, d) = z.dims2(OP)?;
    let s = Stats {
        lse: DeviceBuffer::alloc(gpu, 4 * n2)?,
        pos: DeviceBuffer::alloc(gpu, 4 * n2)?,
        neg: DeviceBuffer::alloc(gpu, 4 * n2)?,
    };
    // 2N f32 each, owned by `s`.
    let (lse, pos, neg) = unsafe {
        (
            DevPtrMut::from_raw(s.lse.ptr()),
            DevPtrMut::from_raw(s.pos.ptr()),
            DevPtrMut::from_raw(s.neg.ptr()),
        )
    };
    let (n2_32, d32) = sizes(n2, d)?;
    let cfg = Launch {
        grid: (n2.div_ceil(ROWS), 1, 1),
        block: (THREADS, 1, 1),
    };
    with_dtype!(z.dtype(), OP, T => {
        let (q, nq) = queue_args::<T>(queue)?;
        let zp = DevPtr::of(z, OP)?;
        k::ntxent_stats(gpu, cfg, zp, q, n2_32, nq, d32, inv_tau, lse, pos, neg)
    })?;
    Ok(s)
}

/// Returns (mean loss [], gradient of the mean loss w.r.t. `z`), both in `z`'s dtype.
fn forward(z: &Tensor, queue: Option<&Tensor>, tau: f64) -> Result<(Tensor, Tensor)> {
    let (n2, d) = z.dims2(OP)?;
    let gpu = gpu_of(z, OP)?;
    let inv_tau = (1.0 / tau) as f32;
    let st = stats(&gpu, z, queue, inv_tau)?;
    let dz = empty(&gpu, z.shape(), z.dtype())?;
    let loss = empty(&gpu, &[], z.dtype())?;
    // Written by the stats kernel: 2N f32 each, owned by `st`.
    let (lse, pos) = unsafe {
        (
            DevPtr::from_raw(st.lse.ptr()),
            DevPtr::from_raw(st.pos.ptr()),
        )
    };
    let (n2_32, d32) = sizes(n2, d)?;
    let scale = (1.0 / (n2 as f64 * tau)) as f32;
    let cfg = Launch {
        grid: (n2.div_ceil(ROWS), d.div_ceil(COLS), 1),
        block: (THREADS, 1, 1),
    };
    with_dtype!(z.dtype(), OP, T => {
        let (q, nq) = queue_args::<T>(queue)?;
        let (zp, dzp) = (DevPtr::of(z, OP)?, DevPtrMut::of(&dz, OP)?);
        k::ntxent_grad(&gpu, cfg, zp, q, n2_32, nq, d32, inv_tau, lse, scale, dzp)?;
        let out = DevPtrMut::<T>::of(&loss, OP)?;
        k::ntxent_mean(&gpu, Launch::rows(1, 256), lse, pos, n2_32, out)
    })?;
    Ok((loss, dz))
}

/// How many anchors' positive logit beats every negative strictly (ties miss): a device f32
/// scalar [] (exact below 2^24 anchors), read when the step's figures are logged.
fn hits(z: &Tensor, queue: Option<&Tensor>) -> Result<Tensor> {
    let n2 = z.dims2(OP)?.0;
    let gpu = gpu_of(z, OP)?;
    let st = stats(&gpu, z, queue, 1.0)?;
    let out = empty(&gpu, &[], DType::F32)?;
    // 2N f32 each, written by the stats kernel and owned by `st`.
    let (pos, neg) = unsafe {
        (
            DevPtr::<f32>::from_raw(st.pos.ptr()),
            DevPtr::<f32>::from_raw(st.neg.ptr()),
        )
    };
    let n2_32 = dim::<i32>(n2, "ntxent: rows")?;
    let o = DevPtrMut::<f32>::of(&out, OP)?;
    k::ntxent_hits(&gpu, Launch::rows(1, 256), pos, neg, n2_32, o)?;
    Ok(out)
}

/// `dz · g` with the upstream gradient `g` (shape [], `dz`'s dtype) read on the device.
fn scale_by(dz: &Tensor, g: &Tensor) -> Result<Tensor> {
    let gpu = gpu_of(dz, OP)?;
    let out = empty(&gpu, dz.shape(), dz.dtype())?;
    let n = dz.numel();
    if n > 0 {
        let n64 = dim::<i64>(n, "ntxent: gradient elements")?;
        with_dtype!(dz.dtype(), OP, T => {
            let (d, gp, o) = (DevPtr::<T>::of(dz, OP)?, DevPtr::<T>::of(g, OP)?, DevPtrMut::<T>::of(&out, OP)?);
            k::ntxent_scale(&gpu, Launch::flat(n), d, gp, n64, o)
        })?;
    }
    Ok(out)
}

impl NtXentKernels for Cuda {
    fn ntxent_forward(z: &Tensor, queue: Option<&Tensor>, tau: f64) -> Result<(Tensor, Tensor)> {
        forward(z, queue, tau)
    }

    fn ntxent_accuracy(z: &Tensor, queue: Option<&Tensor>) -> Result<Accuracy> {
        let count = hits(z, queue)?;
        Ok(Accuracy::Hits {
            count,
            anchors: z.shape()[0],
        })
    }

    /// On the device without reading `g` back, when it has `dz`'s dtype.
    fn scale_by_upstream(dz: &Tensor, g: &Tensor) -> Result<Tensor> {
        match g.dtype() == dz.dtype() && g.device() == dz.device() {
            true => scale_by(dz, g),
            false => scale_forward(dz, g.item()?),
        }
    }
}
