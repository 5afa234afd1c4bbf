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

/// libmpi's entry points and predefined handles.
pub struct Lib {
    pub init_thread: InitThread,
    pub initialized: Flag,
    pub comm_rank: CommInt,
    pub comm_size: CommInt,
    pub set_errhandler: SetErr,
    error_string: ErrString,
    pub iallreduce: Iallreduce,
    pub iallgather: Iallgather,
    pub iallgatherv: Iallgatherv,
    pub ibcast: Ibcast,
    pub ibarrier: Ibarrier,
    pub test: Test,
    pub finalize: Finalize,
    pub comm_world: Handle,
    pub errors_return: Handle,
    pub float: Handle,
    pub double: Handle,
    pub int: Handle,
    pub byte: Handle,
    pub op_sum: Handle,
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
        macro_rules! func {
            ($s:literal, $t:ty) => {
                // SAFETY: the symbol is the C function of that name, whose signature the type
                // alias spells as mpi.h declares it.
                unsafe { std::mem::transmute::<*mut c_void, $t>(sym($s)?) }
            };
        }
        Ok(Lib {
            init_thread: func!("MPI_Init_thread", InitThread),
            initialized: func!("MPI_Initialized", Flag),
            comm_rank: func!("MPI_Comm_rank", CommInt),
            comm_size: func!("MPI_Comm_size", CommInt),
            set_errhandler: func!("MPI_Comm_set_errhandler", SetErr),
            error_string: func!("MPI_Error_string", ErrString),
            iallreduce: func!("MPI_Iallreduce", Iallreduce),
            iallgather: func!("MPI_Iallgather", Iallgather),
            iallgatherv: func!("MPI_Iallgatherv", Iallgatherv),
            ibcast: func!("MPI_Ibcast", Ibcast),
            ibarrier: func!("MPI_Ibarrier", Ibarrier),
            test: func!("MPI_Test", Test),
            finalize: func!("MPI_Finalize", Finalize),
            comm_world: sym("ompi_mpi_comm_world")?,
            errors_return: sym("ompi_mpi_errors_return")?,
            float: sym("ompi_mpi_float")?,
            double: sym("ompi_mpi_double")?,
            int: sym("ompi_mpi_int")?,
            byte: sym("ompi_mpi_byte")?,
            op_sum: sym("ompi_mpi_op_sum")?,
        })
    }

    /// `Ok` for MPI_SUCCESS, else an error naming the call and MPI's description.
    pub fn check(&self, call: &str, code: c_int) -> Result<()> {
        if code == 0 {
            return Ok(());
        }
        let mut buf = [0 as c_char; MAX_ERROR_STRING];
        let mut len: c_int = 0;
        // SAFETY: the buffer holds MPI_MAX_ERROR_STRING characters.
        let text = if unsafe { (self.error_string)(code, buf.as_mut_ptr(), &mut len) } == 0 {
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
