//! The CUDA driver calls the backend makes: devices and their streams, stream-ordered memory,
//! copies, modules and launches, and the memory pool's counters.

use super::counters::{self as c, bump};
use super::route;
use cudarc::driver::{result, sys, CudaContext, CudaStream};
use std::ffi::{c_uchar, c_uint, c_void, CString};
use std::sync::Arc;

pub use sys::{CUdevice, CUdeviceptr, CUfunction, CUmodule, CUresult, CUstream};

/// A failed driver call: the driver's code, and what the emulated device found (empty on a GPU).
#[derive(Clone)]
pub struct DriverError {
    pub code: CUresult,
    pub detail: String,
}

impl DriverError {
    pub fn new(code: CUresult, detail: impl Into<String>) -> Self {
        DriverError {
            code,
            detail: detail.into(),
        }
    }
    pub fn is_out_of_memory(&self) -> bool {
        self.code == CUresult::CUDA_ERROR_OUT_OF_MEMORY
    }
}

impl std::fmt::Debug for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{:?}", self.code)
        } else {
            write!(f, "{:?}: {}", self.code, self.detail)
        }
    }
}

impl From<result::DriverError> for DriverError {
    fn from(e: result::DriverError) -> Self {
        DriverError::new(e.0, "")
    }
}

pub type Result<T> = std::result::Result<T, DriverError>;

fn real<T>(r: std::result::Result<T, result::DriverError>) -> Result<T> {
    r.map_err(DriverError::from)
}

/// Whether the driver library can be loaded at all.
pub fn is_present() -> bool {
    route!(
        real => unsafe { sys::is_culib_present() },
        emu => true,
    )
}

pub fn init() -> Result<()> {
    route!(real => real(result::init()), emu => Ok(()))
}

pub fn device_count() -> Result<i32> {
    route!(
        real => real(result::device::get_count()),
        emu => Ok(crate::cuda::emu::cu::DEVICE_COUNT),
    )
}

/// One device's context and its one stream.
pub struct Context {
    inner: Inner,
}

enum Inner {
    Real {
        ctx: Arc<CudaContext>,
        stream: Arc<CudaStream>,
    },
    #[cfg(feature = "cuda-emu")]
    Emu(crate::cuda::emu::cu::Context),
}

impl Context {
    /// Retains device `ordinal`'s primary context and makes its stream.
    pub fn new(ordinal: usize) -> Result<Self> {
        route!(
            real => {
                let ctx = real(CudaContext::new(ordinal))?;
                let stream = real(ctx.new_stream())?;
                Ok(Context { inner: Inner::Real { ctx, stream } })
            },
            emu => Ok(Context { inner: Inner::Emu(crate::cuda::emu::cu::Context::new(ordinal)?) }),
        )
    }

    pub fn compute_capability(&self) -> Result<(i32, i32)> {
        match &self.inner {
            Inner::Real { ctx, .. } => real(ctx.compute_capability()),
            #[cfg(feature = "cuda-emu")]
            Inner::Emu(e) => Ok(e.compute_capability()),
        }
    }

    pub fn name(&self) -> Result<String> {
        match &self.inner {
            Inner::Real { ctx, .. } => real(ctx.name()),
            #[cfg(feature = "cuda-emu")]
            Inner::Emu(e) => Ok(e.name()),
        }
    }

    pub fn total_mem(&self) -> Result<usize> {
        match &self.inner {
            Inner::Real { ctx, .. } => real(ctx.total_mem()),
            #[cfg(feature = "cuda-emu")]
            Inner::Emu(e) => Ok(e.total_mem()),
        }
    }

    pub fn cu_device(&self) -> CUdevice {
        match &self.inner {
            Inner::Real { ctx, .. } => ctx.cu_device(),
            #[cfg(feature = "cuda-emu")]
            Inner::Emu(e) => e.cu_device(),
        }
    }

    /// Makes this context current on the calling thread.
    pub fn bind_to_thread(&self) -> Result<()> {
        match &self.inner {
            Inner::Real { ctx, .. } => real(ctx.bind_to_thread()),
            #[cfg(feature = "cuda-emu")]
            Inner::Emu(e) => e.bind_to_thread(),
        }
    }

    pub fn stream(&self) -> CUstream {
        match &self.inner {
            Inner::Real { stream, .. } => stream.cu_stream(),
            #[cfg(feature = "cuda-emu")]
            Inner::Emu(e) => e.stream(),
        }
    }

    /// Waits for everything enqueued on the stream.
    pub fn synchronize(&self) -> Result<()> {
        super::graph::refuse_during_capture("cuStreamSynchronize")?;
        bump(&c::SYNCHRONIZATIONS, 1);
        match &self.inner {
            Inner::Real { stream, .. } => real(stream.synchronize()),
            #[cfg(feature = "cuda-emu")]
            Inner::Emu(e) => e.synchronize(),
        }
    }
}

/// # Safety
/// A stream of a live context.
pub unsafe fn malloc_async(stream: CUstream, bytes: usize) -> Result<CUdeviceptr> {
    super::graph::refuse_during_capture("cuMemAllocAsync")?;
    bump(&c::ALLOCATIONS, 1);
    route!(
        real => real(result::malloc_async(stream, bytes)),
        emu => {
            let _op = crate::cuda::emu::order::op(stream, c"cuMemAllocAsync");
            let p = crate::cuda::emu::cu::malloc(bytes)?;
            crate::cuda::emu::order::allocated(p, bytes);
            Ok(p)
        },
    )
}

/// # Safety
/// A context is current on this thread.
pub unsafe fn malloc_sync(bytes: usize) -> Result<CUdeviceptr> {
    super::graph::refuse_during_capture("cuMemAlloc")?;
    bump(&c::ALLOCATIONS, 1);
    route!(
        real => real(result::malloc_sync(bytes)),
        emu => crate::cuda::emu::cu::malloc(bytes),
    )
}

/// # Safety
/// `ptr` came from [`malloc_async`] and is not used after this call is ordered.
pub unsafe fn free_async(ptr: CUdeviceptr, stream: CUstream) -> Result<()> {
    route!(
        real => real(result::free_async(ptr, stream)),
        emu => {
            // Captured like any stream work: a free on a captured stream (from any thread)
            // becomes a node of the graph, as on a GPU.
            let _op = crate::cuda::emu::order::op(stream, c"cuMemFreeAsync");
            crate::cuda::emu::cu::free_async(ptr)
        },
    )
}

/// # Safety
/// `[ptr, ptr + bytes)` is device memory.
pub unsafe fn memset_d8_async(
    ptr: CUdeviceptr,
    value: c_uchar,
    bytes: usize,
    stream: CUstream,
) -> Result<()> {
    route!(
        real => real(result::memset_d8_async(ptr, value, bytes, stream)),
        emu => {
            let _op = crate::cuda::emu::order::op(stream, c"cuMemsetD8Async");
            crate::cuda::emu::cu::memset(ptr, value, bytes)
        },
    )
}

/// Sets `count` 16- or 32-bit words at `ptr` to `word` (a value's bits: a fill without an
/// upload). `width` is 2 or 4 bytes.
///
/// # Safety
/// `[ptr, ptr + width·count)` is device memory, `ptr` aligned to `width`.
pub unsafe fn memset_words_async(
    ptr: CUdeviceptr,
    word: u32,
    width: usize,
    count: usize,
    stream: CUstream,
) -> Result<()> {
    route!(
        real => match width {
            2 => real(sys::cuMemsetD16Async(ptr, word as u16, count, stream).result()),
            _ => real(sys::cuMemsetD32Async(ptr, word, count, stream).result()),
        },
        emu => {
            let _op = crate::cuda::emu::order::op(stream, c"cuMemsetD16/D32Async");
            crate::cuda::emu::cu::memset_words(ptr, word, width, count)
        },
    )
}

/// cuMemsetD8: work on the null (legacy default) stream, asynchronous to the host (CUDA's
/// "API synchronization behavior"), so nothing orders it before work on a non-blocking stream;
/// the emulator runs it as an operation of the null stream.
///
/// # Safety
/// `[ptr, ptr + bytes)` is device memory.
pub unsafe fn memset_d8_sync(ptr: CUdeviceptr, value: c_uchar, bytes: usize) -> Result<()> {
    route!(
        real => real(result::memset_d8_sync(ptr, value, bytes)),
        emu => {
            let _op = crate::cuda::emu::order::op(std::ptr::null_mut(), c"cuMemsetD8");
            crate::cuda::emu::cu::memset(ptr, value, bytes)
        },
    )
}

/// # Safety
/// `src` outlives the copy (synchronise before dropping it); `dst` holds `size_of_val(src)`.
pub unsafe fn memcpy_htod_async<T: Copy>(
    dst: CUdeviceptr,
    src: &[T],
    stream: CUstream,
) -> Result<()> {
    super::graph::refuse_during_capture("cuMemcpyHtoDAsync")?;
    bump(&c::UPLOADS, 1);
    bump(&c::UPLOAD_BYTES, std::mem::size_of_val(src) as u64);
    route!(
        real => real(result::memcpy_htod_async(dst, src, stream)),
        emu => {
            let _op = crate::cuda::emu::order::op(stream, c"cuMemcpyHtoDAsync");
            crate::cuda::emu::cu::copy_htod(dst, src.as_ptr() as *const u8, std::mem::size_of_val(src))
        },
    )
}

/// # Safety
/// `dst` is not read before the stream is synchronised; `src` holds `size_of_val(dst)`.
pub unsafe fn memcpy_dtoh_async<T: Copy>(
    dst: &mut [T],
    src: CUdeviceptr,
    stream: CUstream,
) -> Result<()> {
    super::graph::refuse_during_capture("cuMemcpyDtoHAsync")?;
    bump(&c::DOWNLOADS, 1);
    bump(&c::DOWNLOAD_BYTES, std::mem::size_of_val(dst) as u64);
    route!(
        real => real(result::memcpy_dtoh_async(dst, src, stream)),
        emu => {
            let _op = crate::cuda::emu::order::op(stream, c"cuMemcpyDtoHAsync");
            crate::cuda::emu::cu::copy_dtoh(dst.as_mut_ptr() as *mut u8, src, std::mem::size_of_val(dst))
        },
    )
}

/// # Safety
/// Both ranges are device memory of `bytes` bytes.
pub unsafe fn memcpy_dtod_async(
    dst: CUdeviceptr,
    src: CUdeviceptr,
    bytes: usize,
    stream: CUstream,
) -> Result<()> {
    bump(&c::DEVICE_COPIES, 1);
    route!(
        real => real(result::memcpy_dtod_async(dst, src, bytes, stream)),
        emu => {
            let _op = crate::cuda::emu::order::op(stream, c"cuMemcpyDtoDAsync");
            crate::cuda::emu::cu::copy_dtod(dst, src, bytes)
        },
    )
}

/// Loads the module compiled from `kernels/<family>.cu`; `image` is its fatbin (unused by the
/// emulated device, which has the host-compiled module of the same family).
///
/// # Safety
/// A context is current on this thread.
pub unsafe fn module_load(family: &'static str, image: &[u8]) -> Result<CUmodule> {
    route!(
        real => {
            let _ = family;
            // The driver reads the image through a pointer; give it an 8-byte aligned copy.
            let mut aligned = vec![0u64; image.len().div_ceil(8) + 1];
            let bytes = std::slice::from_raw_parts_mut(aligned.as_mut_ptr() as *mut u8, image.len());
            bytes.copy_from_slice(image);
            real(result::module::load_data(aligned.as_ptr() as *const c_void))
        },
        emu => {
            let _ = image;
            crate::cuda::emu::cu::module_load(family)
        },
    )
}

/// The kernel `name` of module `m` (and of no other module).
///
/// # Safety
/// `m` came from [`module_load`].
pub unsafe fn module_get_function(m: CUmodule, name: &str) -> Result<CUfunction> {
    let cname = CString::new(name).map_err(|_| {
        DriverError::new(
            CUresult::CUDA_ERROR_INVALID_VALUE,
            format!("kernel name {name:?} holds a NUL byte"),
        )
    })?;
    route!(
        real => real(result::module::get_function(m, cname)),
        emu => crate::cuda::emu::cu::module_get_function(m, &cname),
    )
}

/// Launches `f` on `stream`; `params` points at each argument's value, in the kernel's order.
///
/// # Safety
/// `params` matches the kernel's parameter list in count, order and types.
pub unsafe fn launch_kernel(
    f: CUfunction,
    grid: (c_uint, c_uint, c_uint),
    block: (c_uint, c_uint, c_uint),
    shared_mem_bytes: c_uint,
    stream: CUstream,
    params: &mut [*mut c_void],
) -> Result<()> {
    bump(&c::LAUNCHES, 1);
    route!(
        real => real(result::launch_kernel(f, grid, block, shared_mem_bytes, stream, params)),
        emu => {
            let _op = crate::cuda::emu::order::op(stream, c"a kernel launch");
            crate::cuda::emu::cu::launch(f, grid, block, shared_mem_bytes, params)
        },
    )
}

/// (free, total) bytes of the current device.
pub fn mem_get_info() -> Result<(usize, usize)> {
    route!(
        real => real(result::mem_get_info()),
        emu => crate::cuda::emu::cu::mem_get_info(),
    )
}

/// Reads an attribute of `device`'s default memory pool.
pub fn pool_get_attribute(device: CUdevice, attr: sys::CUmemPool_attribute) -> Result<u64> {
    route!(
        real => unsafe {
            let pool = real(result::device::get_default_mem_pool(device))?;
            let mut v: u64 = 0;
            real(result::mem_pool::get_attribute(
                pool,
                attr,
                &mut v as *mut u64 as *mut c_void,
            ))?;
            Ok(v)
        },
        emu => crate::cuda::emu::cu::pool_get_attribute(device, attr),
    )
}

/// Gives the memory `device`'s default pool holds unused back to the driver, keeping at most
/// `keep` bytes (cuMemPoolTrimTo); the emulated pool holds none.
pub fn pool_trim(device: CUdevice, keep: usize) -> Result<()> {
    route!(
        real => unsafe {
            let pool = real(result::device::get_default_mem_pool(device))?;
            real(result::mem_pool::trim_to(pool, keep))
        },
        emu => {
            let _ = (device, keep);
            Ok(())
        },
    )
}

/// Sets an attribute of `device`'s default memory pool.
pub fn pool_set_attribute(
    device: CUdevice,
    attr: sys::CUmemPool_attribute,
    value: u64,
) -> Result<()> {
    route!(
        real => unsafe {
            let pool = real(result::device::get_default_mem_pool(device))?;
            let mut v = value;
            real(result::mem_pool::set_attribute(
                pool,
                attr,
                &mut v as *mut u64 as *mut c_void,
            ))
        },
        emu => crate::cuda::emu::cu::pool_set_attribute(device, attr, value),
    )
}
