//! Emulated driver: devices, checked memory, copies, modules and launches, over the runtime's C
//! ABI (emu/, [`super::ffi`]). Streams are synchronous: work runs when it is enqueued, so a
//! failing kernel or copy reports at its own call and `synchronize` has nothing pending.
//! A module is an index into the table of host-compiled modules; a function is a pointer to its
//! (name, thunk) entry there, so a kernel is found in its own module only.

use super::{ffi, memory};
use crate::cuda::driver::cu::{
    CUdevice, CUdeviceptr, CUfunction, CUmodule, CUresult, CUstream, DriverError, Result,
};
use cudarc::driver::sys;
use std::ffi::{c_uchar, c_uint, c_void, CStr, CString};
use std::ptr;

/// How many emulated devices there are (emu/memory.cpp maps as many).
pub const DEVICE_COUNT: i32 = 4;

fn code(c: i32) -> CUresult {
    use CUresult::*;
    match c {
        1 => CUDA_ERROR_INVALID_VALUE,
        2 => CUDA_ERROR_OUT_OF_MEMORY,
        101 => CUDA_ERROR_INVALID_DEVICE,
        500 => CUDA_ERROR_NOT_FOUND,
        700 => CUDA_ERROR_ILLEGAL_ADDRESS,
        701 => CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES,
        719 => CUDA_ERROR_LAUNCH_FAILED,
        _ => CUDA_ERROR_UNKNOWN,
    }
}

/// Runs a runtime call that reports through (code, message).
fn call(f: impl FnOnce(*mut *mut std::ffi::c_char) -> i32) -> Result<()> {
    let mut err = ptr::null_mut();
    let c = f(&mut err);
    let msg = ffi::take(err);
    if c == 0 {
        Ok(())
    } else {
        Err(DriverError::new(code(c), msg))
    }
}

fn arena_ready() -> Result<()> {
    // SAFETY: maps the arena on first use; returns its failure, if any.
    let e = ffi::take(unsafe { ffi::emu_arena_error() });
    if e.is_empty() {
        Ok(())
    } else {
        Err(DriverError::new(CUresult::CUDA_ERROR_OUT_OF_MEMORY, e))
    }
}

pub struct Context {
    ordinal: usize,
}

impl Context {
    pub fn new(ordinal: usize) -> Result<Self> {
        arena_ready()?;
        // SAFETY: reads a constant of the runtime.
        let count = unsafe { ffi::emu_device_count() } as usize;
        if ordinal >= count.min(DEVICE_COUNT as usize) {
            return Err(DriverError::new(
                CUresult::CUDA_ERROR_INVALID_DEVICE,
                format!("no emulated device {ordinal} (there are {DEVICE_COUNT})"),
            ));
        }
        Ok(Context { ordinal })
    }
    pub fn compute_capability(&self) -> (i32, i32) {
        (9, 0)
    }
    pub fn name(&self) -> String {
        format!("emulated CUDA device {}", self.ordinal)
    }
    pub fn total_mem(&self) -> usize {
        let (mut free, mut total) = (0u64, 0u64);
        // SAFETY: writes two integers.
        unsafe { ffi::emu_mem_info(self.ordinal as i32, &mut free, &mut total) };
        total as usize
    }
    pub fn cu_device(&self) -> CUdevice {
        self.ordinal as CUdevice
    }
    pub fn bind_to_thread(&self) -> Result<()> {
        memory::set_current_device(self.ordinal);
        Ok(())
    }
    /// The device's compute stream: a handle of its own per device, not the null (legacy
    /// default) stream, as on a GPU, where the context's stream is a created non-blocking one;
    /// so work sent to the null stream by mistake is a stream of its own to `super::order`.
    pub fn stream(&self) -> CUstream {
        ((self.ordinal + 1) << 4) as CUstream
    }
    /// Work ran at enqueue time and reported its errors there: nothing is pending, but the host
    /// now knows this stream's work is done (`super::order`).
    pub fn synchronize(&self) -> Result<()> {
        super::order::host_waited(&super::order::snapshot(self.stream()))
    }
}

pub fn malloc(bytes: usize) -> Result<CUdeviceptr> {
    arena_ready()?;
    let mut p = 0u64;
    let dev = memory::current_device() as i32;
    // SAFETY: the runtime writes the address.
    call(|e| unsafe { ffi::emu_malloc(dev, bytes as u64, &mut p, e) })?;
    Ok(p)
}

pub fn free(ptr: CUdeviceptr) -> Result<()> {
    // SAFETY: the runtime checks that ptr is a live allocation.
    call(|e| unsafe { ffi::emu_free(ptr, e) })
}

/// cuMemFreeAsync: freed now, or when a graph capturing the current operation's stream runs.
pub fn free_async(ptr: CUdeviceptr) -> Result<()> {
    enqueue(move || free(ptr))
}

/// Alignment of emulated pinned buffers (what a DMA engine would want).
const PINNED_ALIGN: usize = 256;

/// `bytes` (at least 1) of "page-locked" host memory: ordinary aligned host memory, registered
/// with the runtime because a GPU's kernels may reach pinned memory through unified addressing
/// (emu/memory.cpp refuses every other host address a kernel touches).
pub fn malloc_host(bytes: usize) -> Result<*mut u8> {
    let layout = pinned_layout(bytes)?;
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { std::alloc::alloc(layout) };
    if p.is_null() {
        return Err(DriverError::new(
            sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY,
            format!("{bytes} pinned bytes"),
        ));
    }
    // SAFETY: a plain registration of an address range.
    unsafe { ffi::emu_host_pinned(p as u64, layout.size() as u64, 1) };
    Ok(p)
}

/// # Safety
/// `p` came from [`malloc_host`] with `bytes`.
pub unsafe fn free_host(p: *mut u8, bytes: usize) -> Result<()> {
    let layout = pinned_layout(bytes)?;
    super::pinned::unregistering(p as u64, layout.size())?;
    ffi::emu_host_pinned(p as u64, 0, 0);
    std::alloc::dealloc(p, layout);
    Ok(())
}

fn pinned_layout(bytes: usize) -> Result<std::alloc::Layout> {
    std::alloc::Layout::from_size_align(bytes.max(1), PINNED_ALIGN)
        .map_err(|e| DriverError::new(sys::CUresult::CUDA_ERROR_INVALID_VALUE, e.to_string()))
}

/// Runs a piece of work now, or records it when the current operation's stream is captured
/// (see [`super::graph`]).
fn enqueue(work: impl FnMut() -> Result<()> + 'static) -> Result<()> {
    let mut work = work;
    super::graph::run_or_record(Box::new(move || work().map_err(|e| format!("{e:?}"))))
        .map_err(|m| DriverError::new(CUresult::CUDA_ERROR_LAUNCH_FAILED, m))
}

pub fn memset(ptr: CUdeviceptr, value: c_uchar, bytes: usize) -> Result<()> {
    enqueue(move || {
        memory::check_write(ptr, bytes, "cuMemsetD8")
            .map_err(|m| DriverError::new(CUresult::CUDA_ERROR_INVALID_VALUE, m))?;
        // SAFETY: the range lies inside one live allocation of the arena (checked).
        unsafe { ptr::write_bytes(ptr as *mut u8, value, bytes) };
        Ok(())
    })
}

/// cuMemsetD16/D32: `count` words of `width` (2 or 4) bytes, each `word`'s low bytes.
pub fn memset_words(ptr: CUdeviceptr, word: u32, width: usize, count: usize) -> Result<()> {
    let bytes = width * count;
    if width != 2 && width != 4 || ptr % width as u64 != 0 {
        return Err(DriverError::new(
            CUresult::CUDA_ERROR_INVALID_VALUE,
            format!("cuMemsetD{}: {width}-byte words at {ptr:#x}", 8 * width),
        ));
    }
    enqueue(move || {
        memory::check_write(ptr, bytes, "cuMemsetD16/D32")
            .map_err(|m| DriverError::new(CUresult::CUDA_ERROR_INVALID_VALUE, m))?;
        let pattern = &word.to_le_bytes()[..width];
        // SAFETY: the range lies inside one live allocation of the arena (checked).
        let dst = unsafe { std::slice::from_raw_parts_mut(ptr as *mut u8, bytes) };
        for chunk in dst.chunks_exact_mut(width) {
            chunk.copy_from_slice(pattern);
        }
        Ok(())
    })
}

/// # Safety
/// `src` holds `bytes` bytes.
pub unsafe fn copy_htod(dst: CUdeviceptr, src: *const u8, bytes: usize) -> Result<()> {
    memory::check_write(dst, bytes, "cuMemcpyHtoD destination")
        .map_err(|m| DriverError::new(CUresult::CUDA_ERROR_INVALID_VALUE, m))?;
    ptr::copy_nonoverlapping(src, dst as *mut u8, bytes);
    super::pinned::uploaded(src, bytes)
}

/// Reading back bytes no kernel or copy ever wrote is an error (initcheck).
///
/// # Safety
/// `dst` has room for `bytes` bytes.
pub unsafe fn copy_dtoh(dst: *mut u8, src: CUdeviceptr, bytes: usize) -> Result<()> {
    memory::check_read(src, bytes, "cuMemcpyDtoH source")
        .map_err(|m| DriverError::new(CUresult::CUDA_ERROR_INVALID_VALUE, m))?;
    let data = std::slice::from_raw_parts(src as *const u8, bytes);
    super::pinned::download(dst, data)
}

/// Copies the data and which of its bytes were written.
pub fn copy_dtod(dst: CUdeviceptr, src: CUdeviceptr, bytes: usize) -> Result<()> {
    // SAFETY: the runtime checks both ranges before copying.
    enqueue(move || call(|e| unsafe { ffi::emu_copy_dtod(dst, src, bytes as u64, e) }))
}

pub fn module_load(family: &'static str) -> Result<CUmodule> {
    match ffi::MODULES.iter().position(|(m, _)| *m == family) {
        Some(i) => Ok((i + 1) as CUmodule),
        None => Err(DriverError::new(
            CUresult::CUDA_ERROR_NOT_FOUND,
            format!("no emulated module kernels/{family}.cu"),
        )),
    }
}

pub fn module_get_function(m: CUmodule, name: &CStr) -> Result<CUfunction> {
    let index = (m as usize).wrapping_sub(1);
    let (family, kernels) = ffi::MODULES.get(index).ok_or_else(|| {
        DriverError::new(
            CUresult::CUDA_ERROR_INVALID_HANDLE,
            "not an emulated module",
        )
    })?;
    let name = name.to_string_lossy();
    match kernels.iter().find(|(k, ..)| *k == name) {
        Some(entry) => Ok(entry as *const ffi::Entry as CUfunction),
        None => Err(DriverError::new(
            CUresult::CUDA_ERROR_NOT_FOUND,
            format!("kernel {name} is not in module kernels/{family}.cu"),
        )),
    }
}

/// # Safety
/// `f` came from [`module_get_function`]; `params` points at the kernel's arguments.
pub unsafe fn launch(
    f: CUfunction,
    grid: (c_uint, c_uint, c_uint),
    block: (c_uint, c_uint, c_uint),
    shared_mem_bytes: c_uint,
    params: &mut [*mut c_void],
) -> Result<()> {
    let &(name, thunk, sizes, max_threads) = &*(f as *const ffi::Entry);
    launch_fits(name, block, max_threads)?;
    if sizes.len() != params.len() {
        return Err(DriverError::new(
            CUresult::CUDA_ERROR_INVALID_VALUE,
            format!(
                "{name} takes {} parameters, the launch passed {}",
                sizes.len(),
                params.len()
            ),
        ));
    }
    // The argument values as they are now (a captured launch keeps them, as cuGraph does).
    let mut values: Vec<u64> = params
        .iter()
        .zip(sizes)
        .map(|(&p, &n)| {
            let mut v = 0u64;
            ptr::copy_nonoverlapping(p as *const u8, &mut v as *mut u64 as *mut u8, n as usize);
            v
        })
        .collect();
    let cname = CString::new(name).unwrap_or_default();
    let g = [grid.0, grid.1, grid.2];
    let b = [block.0, block.1, block.2];
    enqueue(move || {
        let mut ptrs: Vec<*mut c_void> = values
            .iter_mut()
            .map(|v| v as *mut u64 as *mut c_void)
            .collect();
        call(|e| {
            ffi::emu_launch(
                cname.as_ptr(),
                thunk,
                g.as_ptr(),
                b.as_ptr(),
                shared_mem_bytes,
                ptrs.as_mut_ptr(),
                e,
            )
        })
    })
}

/// What a GPU checks of a block against the kernel before it runs: no more threads than the
/// kernel's `__launch_bounds__` (`max_threads`, 0 when it has none: CUDA_ERROR_INVALID_VALUE),
/// and registers enough on one SM for the whole block at the kernel's sm_90 count from ptxas
/// (CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES). Test kernels (emu/tests) have no ptxas count.
fn launch_fits(name: &str, block: (c_uint, c_uint, c_uint), max_threads: u32) -> Result<()> {
    let threads = u64::from(block.0) * u64::from(block.1) * u64::from(block.2);
    if max_threads > 0 && threads > u64::from(max_threads) {
        return Err(DriverError::new(
            CUresult::CUDA_ERROR_INVALID_VALUE,
            format!(
                "{name}: a block of {threads} threads exceeds its __launch_bounds__ of \
                 {max_threads}"
            ),
        ));
    }
    let resources = crate::cuda::kernel_resources::of(name);
    match resources.filter(|r| threads <= 1024 && r.occupancy(threads as u32).blocks == 0) {
        Some(r) => Err(DriverError::new(
            CUresult::CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES,
            format!(
                "{name}: a block of {threads} threads at {} registers each needs more than an \
                 SM's 65536 registers or its shared memory ({} bytes static)",
                r.registers, r.shared_bytes
            ),
        )),
        None => Ok(()),
    }
}

pub fn mem_get_info() -> Result<(usize, usize)> {
    arena_ready()?;
    let (mut free, mut total) = (0u64, 0u64);
    // SAFETY: writes two integers.
    unsafe { ffi::emu_mem_info(memory::current_device() as i32, &mut free, &mut total) };
    Ok((free as usize, total as usize))
}

fn counter(attr: sys::CUmemPool_attribute) -> Option<i32> {
    use sys::CUmemPool_attribute::*;
    match attr {
        CU_MEMPOOL_ATTR_USED_MEM_CURRENT => Some(0),
        CU_MEMPOOL_ATTR_USED_MEM_HIGH => Some(1),
        CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT => Some(2),
        CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH => Some(3),
        _ => None,
    }
}

pub fn pool_get_attribute(device: CUdevice, attr: sys::CUmemPool_attribute) -> Result<u64> {
    match counter(attr) {
        // SAFETY: reads a counter under the runtime's lock.
        Some(w) => Ok(unsafe { ffi::emu_pool_counter(device, w, 0) }),
        None => Ok(0),
    }
}

/// Resetting a high-water mark (value 0) sets it to the current value, as the driver does; the
/// release threshold and reuse flags are accepted and have no effect.
pub fn pool_set_attribute(
    device: CUdevice,
    attr: sys::CUmemPool_attribute,
    value: u64,
) -> Result<()> {
    match counter(attr) {
        Some(w @ (1 | 3)) if value == 0 => {
            // SAFETY: resets a counter under the runtime's lock.
            unsafe { ffi::emu_pool_counter(device, w, 1) };
            Ok(())
        }
        Some(_) => Err(DriverError::new(
            CUresult::CUDA_ERROR_INVALID_VALUE,
            format!(
                "cuMemPoolSetAttribute({attr:?}, {value}): only a high-water mark can be set, to 0"
            ),
        )),
        None => Ok(()),
    }
}
