//! Constant tensors made on the device: one cuMemsetD16/D32 of the value's bits, so a backward
//! seed or a constant costs no upload and no host synchronisation. The value is rounded to the
//! dtype exactly as a CPU tensor of that dtype rounds it (through `CpuStorage::from_f64_slice`),
//! so `full` on the GPU holds the same bits as `full` on the CPU followed by an upload.

use super::device::gpu;
use super::driver::cu;
use super::error::CudaCall;
use super::storage::{empty, storage};
use crate::tensor::CpuStorage;
use crate::{DType, Error, Result, Tensor};

/// The bits of `v` rounded to `dtype` and their width in bytes.
fn word(v: f64, dtype: DType) -> Result<(u32, usize)> {
    match CpuStorage::from_f64_slice(&[v], dtype) {
        Some(CpuStorage::F32(x)) => Ok((x[0].to_bits(), 4)),
        Some(CpuStorage::BF16(x)) => Ok((u32::from(x[0].to_bits()), 2)),
        _ => Err(Error::dtype(
            "full",
            format!("the CUDA backend stores f32 and bf16, not {}", dtype.name()),
        )),
    }
}

/// A tensor of `shape` filled with `v` on GPU `ordinal`.
pub fn full(shape: &[usize], v: f64, dtype: DType, ordinal: usize) -> Result<Tensor> {
    let (bits, width) = word(v, dtype)?;
    let g = gpu(ordinal)?;
    let t = empty(&g, shape, dtype)?;
    let n = t.numel();
    if n > 0 {
        let ptr = storage(&t, "full")?.ptr();
        // The n elements of `t`, just allocated with `dtype`'s alignment.
        unsafe { cu::memset_words_async(ptr, bits, width, n, g.cu_stream()) }
            .call("cuMemsetD16/D32Async(full)")?;
    }
    Ok(t)
}
