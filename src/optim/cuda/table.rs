//! Device tables of the multi-tensor kernels (kernels/multi_tensor.cu): one row of packed
//! u64 words per tensor, and the tensor index of every MT_CHUNK-element chunk (one block each).
//! Sizes enter the tables through `int_field` / `i64_field`, checked against the C field's type.

use crate::cuda::alloc::DeviceBuffer;
use crate::cuda::device::Gpu;
use crate::cuda::dims::dim;
use crate::cuda::driver::cu;
use crate::cuda::error::CudaCall;
use crate::Result;
use std::sync::Arc;

/// Elements per block (MT_CHUNK in kernels/multi_tensor.cu).
pub const CHUNK: usize = 16_384;

/// Two 32-bit fields in one little-endian word (the first at the lower address).
pub fn pair(lo: u32, hi: u32) -> u64 {
    u64::from(lo) | u64::from(hi) << 32
}

/// `n` as the bits of an `int` field (checked to fit `int`).
pub fn int_field(n: usize, what: &'static str) -> Result<u32> {
    let v: i32 = dim(n, what)?;
    Ok(u32::from_ne_bytes(v.to_ne_bytes()))
}

/// `n` as the bits of an `i64` field (checked to fit `i64`).
pub fn i64_field(n: usize, what: &'static str) -> Result<u64> {
    let v: i64 = dim(n, what)?;
    Ok(u64::from_ne_bytes(v.to_ne_bytes()))
}

/// First chunk of each tensor (as an `int` field) and the tensor of each chunk, for tensors
/// of `sizes` elements.
pub fn chunks(sizes: &[usize]) -> Result<(Vec<u32>, Vec<i32>)> {
    let mut first = Vec::with_capacity(sizes.len());
    let mut owner = Vec::new();
    for (t, &n) in sizes.iter().enumerate() {
        first.push(int_field(owner.len(), "multi-tensor: chunks")?);
        let t: i32 = dim(t, "multi-tensor: tensors")?;
        owner.extend(std::iter::repeat_n(t, n.div_ceil(CHUNK)));
    }
    Ok((first, owner))
}

/// Copies `words` and `owner` to the device; waits, so the host vectors may be dropped.
pub fn upload(
    gpu: &Arc<Gpu>,
    words: &[u64],
    owner: &[i32],
) -> Result<(DeviceBuffer, DeviceBuffer)> {
    let w = DeviceBuffer::alloc(gpu, 8 * words.len())?;
    let o = DeviceBuffer::alloc(gpu, 4 * owner.len())?;
    unsafe {
        cu::memcpy_htod_async(w.ptr(), words, gpu.cu_stream())
            .call("cuMemcpyHtoDAsync(tensor table)")?;
        cu::memcpy_htod_async(o.ptr(), owner, gpu.cu_stream())
            .call("cuMemcpyHtoDAsync(chunk table)")?;
    }
    gpu.synchronize()?;
    Ok((w, o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_tensor() {
        let (first, owner) = chunks(&[1, CHUNK, CHUNK + 1, 0, 3]).unwrap();
        assert_eq!(first, vec![0, 1, 2, 4, 4]);
        assert_eq!(owner, vec![0, 1, 2, 2, 4]);
        assert_eq!(pair(1, 2), 0x2_0000_0001);
    }

    #[test]
    fn fields_that_do_not_fit_their_c_type_are_errors() {
        assert_eq!(int_field(5, "t").unwrap(), 5);
        let e = int_field(1 << 31, "multi-tensor: chunks").unwrap_err();
        assert!(e.to_string().contains("multi-tensor: chunks"), "{e}");
        assert_eq!(i64_field(1 << 40, "t").unwrap(), 1 << 40);
    }
}
