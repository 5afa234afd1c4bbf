//! Emulated driver: devices, memory, copies, modules and launches. (Skeleton: filled in by the
//! emulator runtime.)

use crate::cuda::driver::cu::{
    CUdevice, CUdeviceptr, CUfunction, CUmodule, CUresult, CUstream, DriverError, Result,
};
use cudarc::driver::sys;
use std::ffi::{c_uchar, c_uint, c_void, CStr};

/// How many emulated devices there are.
pub const DEVICE_COUNT: i32 = 4;

fn todo(what: &str) -> DriverError {
    DriverError::new(
        CUresult::CUDA_ERROR_NOT_SUPPORTED,
        format!("{what} is not emulated yet"),
    )
}

pub struct Context {
    ordinal: usize,
}

impl Context {
    pub fn new(ordinal: usize) -> Result<Self> {
        Ok(Context { ordinal })
    }
    pub fn compute_capability(&self) -> (i32, i32) {
        (9, 0)
    }
    pub fn name(&self) -> String {
        format!("emulated CUDA device {}", self.ordinal)
    }
    pub fn total_mem(&self) -> usize {
        0
    }
    pub fn cu_device(&self) -> CUdevice {
        self.ordinal as CUdevice
    }
    pub fn bind_to_thread(&self) -> Result<()> {
        Err(todo("cuCtxSetCurrent"))
    }
    pub fn stream(&self) -> CUstream {
        std::ptr::null_mut()
    }
    pub fn synchronize(&self) -> Result<()> {
        Err(todo("cuStreamSynchronize"))
    }
}

pub fn malloc(_bytes: usize) -> Result<CUdeviceptr> {
    Err(todo("cuMemAlloc"))
}
pub fn free(_ptr: CUdeviceptr) -> Result<()> {
    Err(todo("cuMemFree"))
}
pub fn memset(_ptr: CUdeviceptr, _value: c_uchar, _bytes: usize) -> Result<()> {
    Err(todo("cuMemsetD8"))
}
/// # Safety
/// `src` holds `bytes` bytes.
pub unsafe fn copy_htod(_dst: CUdeviceptr, _src: *const u8, _bytes: usize) -> Result<()> {
    Err(todo("cuMemcpyHtoD"))
}
/// # Safety
/// `dst` has room for `bytes` bytes.
pub unsafe fn copy_dtoh(_dst: *mut u8, _src: CUdeviceptr, _bytes: usize) -> Result<()> {
    Err(todo("cuMemcpyDtoH"))
}
pub fn copy_dtod(_dst: CUdeviceptr, _src: CUdeviceptr, _bytes: usize) -> Result<()> {
    Err(todo("cuMemcpyDtoD"))
}
pub fn module_load(_family: &'static str) -> Result<CUmodule> {
    Err(todo("cuModuleLoadData"))
}
pub fn module_get_function(_m: CUmodule, _name: &CStr) -> Result<CUfunction> {
    Err(todo("cuModuleGetFunction"))
}
/// # Safety
/// `params` points at the kernel's arguments.
pub unsafe fn launch(
    _f: CUfunction,
    _grid: (c_uint, c_uint, c_uint),
    _block: (c_uint, c_uint, c_uint),
    _shared_mem_bytes: c_uint,
    _params: &mut [*mut c_void],
) -> Result<()> {
    Err(todo("cuLaunchKernel"))
}
pub fn mem_get_info() -> Result<(usize, usize)> {
    Err(todo("cuMemGetInfo"))
}
pub fn pool_get_attribute(_device: CUdevice, _attr: sys::CUmemPool_attribute) -> Result<u64> {
    Err(todo("cuMemPoolGetAttribute"))
}
pub fn pool_set_attribute(
    _device: CUdevice,
    _attr: sys::CUmemPool_attribute,
    _value: u64,
) -> Result<()> {
    Err(todo("cuMemPoolSetAttribute"))
}
