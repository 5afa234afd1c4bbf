//! The C ABI of the emulator's runtime (emu/*.cpp, linked as `libsimclr_emu.a` by build/emu.rs)
//! and the table of host-compiled modules. Codes are CUresult values; a message comes back as a
//! malloc'd C string that [`take`] turns into a `String` and frees. Nothing here panics.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr};

include!(concat!(env!("OUT_DIR"), "/emu_modules.rs"));

unsafe extern "C" {
    pub fn emu_device_count() -> c_int;
    pub fn emu_arena_error() -> *mut c_char;
    pub fn emu_malloc(dev: c_int, bytes: u64, out: *mut u64, err: *mut *mut c_char) -> c_int;
    pub fn emu_free(ptr: u64, err: *mut *mut c_char) -> c_int;
    pub fn emu_check(ptr: u64, bytes: u64, write: c_int, err: *mut *mut c_char) -> c_int;
    pub fn emu_copy_dtod(dst: u64, src: u64, bytes: u64, err: *mut *mut c_char) -> c_int;
    pub fn emu_device_of(ptr: u64) -> c_int;
    pub fn emu_mem_info(dev: c_int, free: *mut u64, total: *mut u64);
    pub fn emu_pool_counter(dev: c_int, which: c_int, reset: c_int) -> u64;
    pub fn emu_launch(
        name: *const c_char,
        thunk: Thunk,
        grid: *const c_uint,
        block: *const c_uint,
        shared_bytes: c_uint,
        params: *mut *mut c_void,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn emu_string_free(s: *mut c_char);
    pub fn emu_op_set(op: *const super::order::StreamOp);
    pub fn emu_op_allocated(ptr: u64, bytes: u64);
    pub fn emu_host_pinned(ptr: u64, bytes: u64, live: c_int);
    pub fn emu_is_pinned(ptr: u64, bytes: u64) -> c_int;
}

/// The runtime's message (and frees it); empty for a null pointer.
pub fn take(s: *mut c_char) -> String {
    if s.is_null() {
        return String::new();
    }
    // SAFETY: the runtime returns NUL-terminated strings from strdup.
    unsafe {
        let m = CStr::from_ptr(s).to_string_lossy().into_owned();
        emu_string_free(s);
        m
    }
}
