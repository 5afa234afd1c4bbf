//! Device tables of the multi-tensor kernels (kernels/multi_tensor.cu): one row of packed
//! u64 words per tensor, and the tensor index of every MT_CHUNK-element chunk (one block each).

use crate::cuda::alloc::DeviceBuffer;
use crate::cuda::device::Gpu;
use crate::cuda::driver::cu;
use crate::cuda::error::CudaCall;
use crate::Result;
use std::sync::Arc;

/// Elements per block (MT_CHUNK in kernels/multi_tensor.cu).
pub const CHUNK: usize = 16_384;

/// Two 32-bit fields in one little-endian word (the first at the lower address).
pub fn pair(lo: u32, hi: u32) -> u64 {
    lo as u64 | (hi as u64) << 32
}

/// First chunk of each tensor and the tensor of each chunk, for tensors of `sizes` elements.
pub fn chunks(sizes: &[usize]) -> (Vec<u32>, Vec<i32>) {
    let mut first = Vec::with_capacity(sizes.len());
    let mut owner = Vec::new();
    for (t, &n) in sizes.iter().enumerate() {
        first.push(owner.len() as u32);
        owner.extend(std::iter::repeat_n(t as i32, n.div_ceil(CHUNK)));
    }
    (first, owner)
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
        let (first, owner) = chunks(&[1, CHUNK, CHUNK + 1, 0, 3]);
        assert_eq!(first, vec![0, 1, 2, 4, 4]);
        assert_eq!(owner, vec![0, 1, 2, 2, 4]);
        assert_eq!(pair(1, 2), 0x2_0000_0001);
    }
}
