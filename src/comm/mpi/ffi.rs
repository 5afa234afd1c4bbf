//! The few calls of Open MPI's C library we use, loaded at run time with `dlopen`.
//!
//! Why our own FFI and not the `mpi` crate (rsmpi): rsmpi generates its bindings with bindgen
//! at build time, so every build of the feature needs libclang and the MPI headers, and the
//! binary then links libmpi and cannot start where MPI is not installed. Loading libmpi when a
//! launcher asks for it keeps `--features mpi` building anywhere and a single-process run
//! independent of MPI, as libnccl is handled for NCCL. The price is ABI knowledge: this file
//! speaks **Open MPI's** ABI (4.x/5.x, `libmpi.so.40`), whose handles are addresses of exported
//! globals (`MPI_COMM_WORLD` is `&ompi_mpi_comm_world`, `MPI_FLOAT` `&ompi_mpi_float`, …) and
//! whose `MPI_Status` is never read here (`MPI_STATUS_IGNORE` is null). MPICH's integer handles
//! are not supported; the loader refuses a library without Open MPI's symbols.
//!
//! Only non-blocking collectives are bound (`MPI_Iallreduce`, …) plus `MPI_Test`: the caller
//! polls with a deadline, so a dead or hung rank becomes an error, never a silent hang.

use crate::{Error, Result};
use std::ffi::{c_char, c_int, c_void, CStr, CString};

pub type Handle = *mut c_void;

/// `MPI_THREAD_SERIALIZED`: any thread may call, one at a time (we hold a lock).
pub const THREAD_SERIALIZED: c_int = 2;
const MAX_ERROR_STRING: usize = 256;
/// `MPI_SUCCESS`.
const SUCCESS: c_int = 0;

type InitThread = unsafe extern "C" fn(*mut c_int, *mut c_void, c_int, *mut c_int) -> c_int;
type Flag = unsafe extern "C" fn(*mut c_int) -> c_int;
type CommInt = unsafe extern "C" fn(Handle, *mut c_int) -> c_int;
type SetErr = unsafe extern "C" fn(Handle, Handle) -> c_int;
type ErrString = unsafe extern "C" fn(c_int, *mut c_char, *mut c_int) -> c_int;
type Iallreduce = unsafe extern "C" fn(
    *const c_void,
    *mut c_void,
    c_int,
    Handle,
    Handle,
    Handle,
    *mut Handle,
) -> c_int;
type Iallgather = unsafe extern "C" fn(
    *const c_void,
    c_int,
    Handle,
    *mut c_void,
    c_int,
    Handle,
    Handle,
    *mut Handle,
) -> c_int;
type Iallgatherv = unsafe extern "C" fn(
    *const c_void,
    c_int,
    Handle,
    *mut c_void,
    *const c_int,
    *const c_int,
    Handle,
    Handle,
    *mut Handle,
) -> c_int;
type Ibcast = unsafe extern "C" fn(*mut c_void, c_int, Handle, c_int, Handle, *mut Handle) -> c_int;
type Ibarrier = unsafe extern "C" fn(Handle, *mut Handle) -> c_int;
type Test = unsafe extern "C" fn(*mut Handle, *mut c_int, *mut c_void) -> c_int;
type Finalize = unsafe extern "C" fn() -> c_int;

/// libmpi's entry points (field: signature as mpi.h declares it = symbol) and predefined
/// handles (field = the global whose address mpi.h's macro is, for that macro), each once. Gives
/// [`Lib`], its binding, and what tests/mpi_header.rs holds against mpi.h.
macro_rules! library {
    (
        functions { $($fvis:vis $field:ident: $ty:ty = $sym:literal,)* }
        handles { $($handle:ident = $global:literal for $macro:literal,)* }
    ) => {
        /// libmpi's entry points and predefined handles.
        pub struct Lib {
            $($fvis $field: $ty,)*
            $(pub $handle: Handle,)*
        }

        impl Lib {
            fn bind(h: *mut c_void, name: &str) -> Result<Lib> {
                let sym = |s: &str| -> Result<*mut c_void> {
                    let c = CString::new(s).expect("symbol names have no NUL");
                    // SAFETY: dlsym on a live handle.
                    let p = unsafe { libc::dlsym(h, c.as_ptr()) };
                    if p.is_null() {
                        Err(unavailable(&format!(
                            "{name} has no symbol {s} (only Open MPI's ABI is supported)"
                        )))
                    } else {
                        Ok(p)
                    }
                };
                // SAFETY: each symbol is the C function of that name, whose signature the type
                // alias spells as mpi.h declares it (tests/mpi_header.rs checks it).
                Ok(Lib {
                    $($field: unsafe { std::mem::transmute::<*mut c_void, $ty>(sym($sym)?) },)*
                    $($handle: sym($global)?,)*
                })
            }
        }

        /// Each entry point's symbol and the shape of the signature we call it with.
        pub fn declared_shapes() -> Vec<(&'static str, String)> {
            vec![$(($sym, crate::abi::shape_of::<$ty>()),)*]
        }

        /// Each predefined handle's macro in mpi.h and the global we take for it.
        pub fn declared_handles() -> Vec<(&'static str, &'static str)> {
            vec![$(($macro, $global),)*]
        }
    };
}

library! {
    functions {
        pub init_thread: InitThread = "MPI_Init_thread",
        pub initialized: Flag = "MPI_Initialized",
        pub comm_rank: CommInt = "MPI_Comm_rank",
        pub comm_size: CommInt = "MPI_Comm_size",
        pub set_errhandler: SetErr = "MPI_Comm_set_errhandler",
        error_string: ErrString = "MPI_Error_string",
        pub iallreduce: Iallreduce = "MPI_Iallreduce",
        pub iallgather: Iallgather = "MPI_Iallgather",
        pub iallgatherv: Iallgatherv = "MPI_Iallgatherv",
        pub ibcast: Ibcast = "MPI_Ibcast",
        pub ibarrier: Ibarrier = "MPI_Ibarrier",
        pub test: Test = "MPI_Test",
        pub finalize: Finalize = "MPI_Finalize",
    }
    handles {
        comm_world = "ompi_mpi_comm_world" for "MPI_COMM_WORLD",
        errors_return = "ompi_mpi_errors_return" for "MPI_ERRORS_RETURN",
        float = "ompi_mpi_float" for "MPI_FLOAT",
        double = "ompi_mpi_double" for "MPI_DOUBLE",
        int = "ompi_mpi_int" for "MPI_INT",
        byte = "ompi_mpi_byte" for "MPI_BYTE",
        op_sum = "ompi_mpi_op_sum" for "MPI_SUM",
    }
}

/// Our constants by their names in mpi.h, for tests/mpi_header.rs.
pub fn declared_constants() -> Vec<(&'static str, i64)> {
    vec![
        ("MPI_THREAD_SERIALIZED", THREAD_SERIALIZED.into()),
        ("MPI_MAX_ERROR_STRING", MAX_ERROR_STRING as i64),
        ("MPI_SUCCESS", SUCCESS.into()),
    ]
}

// The handles are addresses of libmpi's globals, valid for the life of the process.
unsafe impl Send for Lib {}
unsafe impl Sync for Lib {}

/// Library names tried in order; `SIMCLR_MPI_LIB` (a path) comes first when set.
const NAMES: [&str; 2] = ["libmpi.so.40", "libmpi.so"];

fn dlerror() -> String {
    // SAFETY: dlerror returns a thread-local C string or null.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".into()
    } else {
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

impl Lib {
    /// Opens libmpi (globally, so Open MPI's own plugins can resolve its symbols).
    pub fn load() -> Result<Lib> {
        let mut names: Vec<String> = std::env::var("SIMCLR_MPI_LIB").into_iter().collect();
        names.extend(NAMES.iter().map(|s| s.to_string()));
        let mut tried = Vec::new();
        for name in &names {
            let c = CString::new(name.as_str()).map_err(|_| unavailable("a name with a NUL"))?;
            // SAFETY: dlopen with a valid C string.
            let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            if !h.is_null() {
                return Self::bind(h, name);
            }
            tried.push(format!("{name}: {}", dlerror()));
        }
        Err(unavailable(&tried.join("; ")))
    }

    /// `Ok` for MPI_SUCCESS, else an error naming the call and MPI's description.
    pub fn check(&self, call: &str, code: c_int) -> Result<()> {
        if code == SUCCESS {
            return Ok(());
        }
        let mut buf = [0 as c_char; MAX_ERROR_STRING];
        let mut len: c_int = 0;
        // SAFETY: the buffer holds MPI_MAX_ERROR_STRING characters.
        let text = if unsafe { (self.error_string)(code, buf.as_mut_ptr(), &mut len) } == SUCCESS {
            unsafe { CStr::from_ptr(buf.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        } else {
            "no description".into()
        };
        Err(Error::device(
            "mpi",
            format!("{call} failed ({code}): {text}"),
        ))
    }
}

fn unavailable(detail: &str) -> Error {
    Error::device(
        "mpi",
        format!(
            "Open MPI is not available ({detail}): install it (Debian: apt-get install \
             openmpi-bin libopenmpi-dev) or point SIMCLR_MPI_LIB at libmpi.so.40"
        ),
    )
}
