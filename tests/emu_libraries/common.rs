//! Emulated device memory for the libraries' arguments ([`DevBuf`]: allocated, uploaded and
//! downloaded through the driver API, so the libraries' range checks see real allocations),
//! values encoded independently of the emulation (the `half` crate directly), and the random
//! inputs.

use half::bf16;
use simclr::cuda::driver::{self, cu};
use simclr::{DType, Rng};
use std::ffi::c_void;

/// Selects the emulated device and binds device `ordinal` to the calling thread (allocations
/// and NCCL communicators made on this thread afterwards are on that device).
pub fn bind(ordinal: usize) {
    driver::select(driver::Mode::Emulated).unwrap();
    cu::Context::new(ordinal).unwrap().bind_to_thread().unwrap();
}

/// The stream of the uploads and downloads: the null stream, the one the library calls of these
/// tests go to (handles left at their default stream, collectives given none), so that the
/// emulated device's stream-order check sees one stream.
fn stream() -> cu::CUstream {
    std::ptr::null_mut()
}

/// A buffer of emulated device memory on the device bound to the calling thread when it was
/// made, freed on drop.
pub struct DevBuf {
    ctx: cu::Context,
    ptr: cu::CUdeviceptr,
    bytes: usize,
}

impl DevBuf {
    /// `bytes` bytes never written (reading them is an error of the emulated device).
    pub fn alloc(bytes: usize) -> DevBuf {
        driver::select(driver::Mode::Emulated).unwrap();
        let ctx = cu::Context::new(simclr::cuda::emu::memory::current_device()).unwrap();
        let ptr = unsafe { cu::malloc_sync(bytes) }.unwrap();
        DevBuf { ctx, ptr, bytes }
    }

    /// A copy of `data` on the device.
    pub fn upload(data: &[u8]) -> DevBuf {
        let b = DevBuf::alloc(data.len());
        unsafe { cu::memcpy_htod_async(b.ptr, data, stream()) }.unwrap();
        b.ctx.synchronize().unwrap();
        b
    }

    /// The buffer's bytes (every one must have been written).
    pub fn download(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.bytes];
        // On the buffer's device's null stream, where its library calls went; the thread's
        // device is restored after.
        let bound = simclr::cuda::emu::memory::current_device();
        self.ctx.bind_to_thread().unwrap();
        unsafe { cu::memcpy_dtoh_async(&mut out, self.ptr, stream()) }.unwrap();
        self.ctx.synchronize().unwrap();
        cu::Context::new(bound).unwrap().bind_to_thread().unwrap();
        out
    }

    pub fn len(&self) -> usize {
        self.bytes
    }

    /// The device address `offset` bytes in.
    pub fn at(&mut self, offset: usize) -> *mut c_void {
        (self.ptr as usize + offset) as *mut c_void
    }
}

impl Drop for DevBuf {
    fn drop(&mut self) {
        let r = unsafe { cu::free_async(self.ptr, self.ctx.stream()) };
        if !std::thread::panicking() {
            r.unwrap();
        }
    }
}

/// Encodes values as `dt` (bf16 rounded to nearest even).
pub fn encode(v: &[f64], dt: DType) -> Vec<u8> {
    let mut out = Vec::new();
    for &x in v {
        match dt {
            DType::F32 => out.extend_from_slice(&(x as f32).to_le_bytes()),
            DType::BF16 => out.extend_from_slice(&simclr::tensor::bf16_from_f64(x).to_le_bytes()),
            DType::F64 => out.extend_from_slice(&x.to_le_bytes()),
            DType::F16 => out.extend_from_slice(&simclr::tensor::f16_from_f64(x).to_le_bytes()),
        }
    }
    out
}

pub fn decode(b: &[u8], dt: DType) -> Vec<f64> {
    match dt {
        DType::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        DType::BF16 => b
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        DType::F64 => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        DType::F16 => b
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
    }
}

/// Random values already representable in `dt` (so the f64 reference sees the same inputs).
pub fn random(n: usize, dt: DType, rng: &mut Rng) -> (Vec<f64>, Vec<u8>) {
    let v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let bytes = encode(&v, dt);
    (decode(&bytes, dt), bytes)
}

/// A buffer of `n` elements of `dt`, every one NaN (a β = 0 output must not be read).
pub fn nans(n: usize, dt: DType) -> Vec<u8> {
    encode(&vec![f64::NAN; n], dt)
}

/// The device address of an input.
pub fn ptr(b: &DevBuf) -> *const c_void {
    b.ptr as usize as *const c_void
}
/// The device address of an output.
pub fn mptr(b: &mut DevBuf) -> *mut c_void {
    b.ptr as usize as *mut c_void
}

/// `n` elements of `dt` on the device, every one NaN (written, so a β = 0 output that the
/// library wrongly read would show as NaN rather than as an uninitialised read).
pub fn dev_nans(n: usize, dt: DType) -> DevBuf {
    DevBuf::upload(&nans(n, dt))
}

/// An f32 value rounded to TF32 (10 explicit mantissa bits, nearest-even), written here apart
/// from the emulator's own rounding it checks.
pub fn tf32_reference(v: f64) -> f64 {
    let b = (v as f32).to_bits();
    f64::from(f32::from_bits((b + 0xfff + ((b >> 13) & 1)) & !0x1fff))
}
