//! Launching the test-only kernels of the emulated device (module `test_faults`,
//! emu/tests/faults.cu) through the driver floor, for the emulator's own tests.

#![allow(dead_code)]

use simclr::cuda::driver::{self, cu, Mode};
use std::ffi::c_void;

pub fn ctx() -> cu::Context {
    driver::select(Mode::Emulated).unwrap();
    let c = cu::Context::new(0).unwrap();
    c.bind_to_thread().unwrap();
    c
}

/// Two new streams of device 0, and two 256-byte buffers (cuMemAlloc: every stream's).
pub fn two_streams() -> (cu::Context, [cu::CUstream; 2], [u64; 2]) {
    let c = ctx();
    let streams = [(); 2].map(|_| simclr::cuda::driver::event::stream_create().unwrap());
    (c, streams, [(); 2].map(|_| alloc(256)))
}

pub fn kernel(name: &str) -> cu::CUfunction {
    unsafe {
        let m = cu::module_load("test_faults", &[]).unwrap();
        cu::module_get_function(m, name).unwrap()
    }
}

pub fn alloc(bytes: usize) -> u64 {
    unsafe { cu::malloc_sync(bytes) }.unwrap()
}

pub fn upload<T: Copy>(c: &cu::Context, v: &[T]) -> u64 {
    let p = alloc(std::mem::size_of_val(v));
    unsafe { cu::memcpy_htod_async(p, v, c.stream()) }.unwrap();
    p
}

pub fn download<T: Copy + Default>(c: &cu::Context, p: u64, n: usize) -> Result<Vec<T>, String> {
    let mut v = vec![T::default(); n];
    unsafe { cu::memcpy_dtoh_async(&mut v, p, c.stream()) }.map_err(|e| format!("{e:?}"))?;
    Ok(v)
}

/// A pointer to each argument, as cuLaunchKernel takes them.
#[macro_export]
macro_rules! params {
    ($($a:expr),*) => { [$(&mut $a as *mut _ as *mut std::ffi::c_void),*] };
}

pub fn launch(
    c: &cu::Context,
    name: &str,
    grid: (u32, u32, u32),
    block: (u32, u32, u32),
    params: &mut [*mut c_void],
) -> Result<(), String> {
    unsafe { cu::launch_kernel(kernel(name), grid, block, 0, c.stream(), params) }
        .map_err(|e| format!("{e:?}"))
}

pub fn expect_err(r: Result<(), String>, parts: &[&str]) {
    let e = r.expect_err("the emulated device must refuse this");
    for p in parts {
        assert!(e.contains(p), "message {e:?} lacks {p:?}");
    }
}

/// One block of `threads` threads, or `blocks` such blocks, of `name`, then the first `n`
/// elements of `out`: what most of the emulator's own tests do.
pub fn launch_read<T: Copy + Default>(
    c: &cu::Context,
    name: &str,
    blocks: u32,
    threads: u32,
    params: &mut [*mut c_void],
    out: u64,
    n: usize,
) -> Result<Vec<T>, String> {
    launch(c, name, (blocks, 1, 1), (threads, 1, 1), params)?;
    download(c, out, n)
}
