//! Finding and preloading the CUDA libraries (real mode only), before cudarc loads anything.
//!
//! cudarc opens each library with `dlopen(name)` from a fixed list of names, so it only finds
//! what the system's search (ld.so.cache, `LD_LIBRARY_PATH` read at process start) finds. The
//! PyTorch wheels put cuBLAS under `site-packages/nvidia/cu13/lib` (CUDA 13) or
//! `nvidia/cublas/lib` (CUDA 12), cuDNN under `nvidia/cudnn/lib`, NCCL under `nvidia/nccl/lib`.
//! So we look there ourselves and `dlopen(path, RTLD_NOW | RTLD_GLOBAL)` each library by
//! absolute path; glibc then answers cudarc's later `dlopen("libcublas.so.13")` with the loaded
//! object, whose DT_SONAME matches. NCCL's only soname, `libnccl.so.2`, is not among cudarc's
//! names: a stub library built by build.rs (build/soname_stubs.rs) with soname
//! `libnccl.so` and DT_NEEDED `libnccl.so.2` is loaded after it (from a memfd), so
//! `dlopen("libnccl.so")` returns the stub and `dlsym` reaches the real library through it.
//!
//! Search order, first hit wins per library: the folders of `$SIMCLR_CUDA_LIBS` (colon
//! separated), every `nvidia/*/lib` (and `torch/lib`) under the `sys.path` of `$SIMCLR_PYTHON`
//! (default `python3`, run once), `$CUDA_HOME/lib64`, `/usr/local/cuda/lib64`; when none holds
//! a library it is left to the system's search. Every path tried is kept for the report.
//!
//! nvJPEG (`libnvjpeg.so.13`, the `nvidia-nvjpeg` wheel in `nvidia/cu13/lib`) is optional: it
//! is looked for and preloaded the same way, last, and its absence fails nothing (the probe and
//! the report only need cuBLAS, cuDNN and NCCL); `super::nvjpeg` resolves its symbols.

use std::ffi::{c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

include!(concat!(env!("OUT_DIR"), "/soname_stubs.rs"));

/// One library the backend needs.
struct Spec {
    /// Name in reports.
    name: &'static str,
    /// File names to load from the chosen folder, dependencies first; the last is the library.
    files: &'static [&'static str],
    /// Also load every file of the chosen folder whose name starts with the first string and
    /// holds the second (cuDNN 9's sub-libraries, which it opens by name at run time).
    family: Option<(&'static str, &'static str)>,
    /// Not needed by the probe: its absence is reported, never a failure.
    optional: bool,
}

/// The name of nvJPEG in reports and its file.
pub const NVJPEG: &str = "nvJPEG";
pub const NVJPEG_FILE: &str = "libnvjpeg.so.13";

const SPECS: [Spec; 5] = [
    Spec {
        name: "cuBLAS",
        files: &["libcublasLt.so.13", "libcublas.so.13"],
        family: None,
        optional: false,
    },
    // Before cuDNN: its runtime-compiled engines need NVRTC (in `nvidia/cu13/lib` on CUDA 13).
    Spec {
        name: "NVRTC",
        files: &["libnvrtc.so.13"],
        family: Some(("libnvrtc-builtins", ".so.13")),
        optional: false,
    },
    Spec {
        name: "cuDNN",
        files: &["libcudnn.so.9"],
        family: Some(("libcudnn_", ".so.9")),
        optional: false,
    },
    Spec {
        name: "NCCL",
        files: &["libnccl.so.2"],
        family: None,
        optional: false,
    },
    // Self-contained (no CUDA library among its DT_NEEDED): last, so it changes nothing above.
    Spec {
        name: NVJPEG,
        files: &[NVJPEG_FILE],
        family: None,
        optional: true,
    },
];

/// What discovery did for one library.
#[derive(Clone, Debug, Default)]
pub struct Found {
    pub name: &'static str,
    /// The library file loaded by absolute path, if one was found.
    pub path: Option<PathBuf>,
    /// Every candidate path looked at, in order.
    pub tried: Vec<PathBuf>,
    /// Failures of `dlopen` (file, message); empty when everything loaded.
    pub errors: Vec<String>,
    /// The soname stub loaded after it, if any.
    pub stub: Option<&'static str>,
    /// An optional library (nvJPEG): not finding it fails nothing.
    pub optional: bool,
}

impl Discovery {
    /// What discovery did for the library named `name` in reports.
    pub fn library(&self, name: &str) -> Option<&Found> {
        self.libraries.iter().find(|f| f.name == name)
    }
}

/// The outcome of discovery: the folders searched (with where each came from) and each library.
#[derive(Clone, Debug, Default)]
pub struct Discovery {
    pub folders: Vec<(PathBuf, &'static str)>,
    pub libraries: Vec<Found>,
    /// Notes on the search itself (python not found, ...).
    pub notes: Vec<String>,
}

/// Runs discovery and preloading once per process (real mode only; the emulated device loads
/// nothing) and returns what it did.
pub fn preload() -> &'static Discovery {
    static DONE: OnceLock<Discovery> = OnceLock::new();
    DONE.get_or_init(|| {
        if super::mode() != super::Mode::Real {
            return Discovery::default();
        }
        let (folders, notes) = search_folders();
        let mut d = Discovery {
            folders,
            libraries: Vec::new(),
            notes,
        };
        for spec in &SPECS {
            d.libraries.push(load_spec(spec, &d.folders));
        }
        d
    })
}

/// The folders to search, in order, each with its source.
fn search_folders() -> (Vec<(PathBuf, &'static str)>, Vec<String>) {
    let mut out: Vec<(PathBuf, &'static str)> = Vec::new();
    let mut notes = Vec::new();
    let push = |p: PathBuf, src: &'static str, out: &mut Vec<(PathBuf, &'static str)>| {
        if p.is_dir() && !out.iter().any(|(q, _)| *q == p) {
            out.push((p, src));
        }
    };
    if let Some(v) = std::env::var_os("SIMCLR_CUDA_LIBS") {
        for p in std::env::split_paths(&v) {
            if !p.is_dir() {
                notes.push(format!(
                    "$SIMCLR_CUDA_LIBS names {}, which is not a folder",
                    p.display()
                ));
            }
            push(p, "$SIMCLR_CUDA_LIBS", &mut out);
        }
    }
    match python_paths() {
        Ok(paths) => {
            let before = out.len();
            for sp in &paths {
                for lib in wheel_lib_folders(sp) {
                    push(lib, "python sys.path", &mut out);
                }
            }
            if out.len() == before {
                notes.push(format!(
                    "none of the {} sys.path entries of the python holds nvidia/*/lib or \
                     torch/lib (is PyTorch installed for it? $SIMCLR_PYTHON picks another)",
                    paths.len()
                ));
            }
        }
        Err(e) => notes.push(e),
    }
    let mut fixed = vec![(PathBuf::from("/usr/local/cuda/lib64"), "/usr/local/cuda")];
    if let Some(home) = std::env::var_os("CUDA_HOME") {
        fixed.insert(0, (Path::new(&home).join("lib64"), "$CUDA_HOME"));
    }
    for (p, src) in fixed {
        if !p.is_dir() {
            notes.push(format!("{} ({src}) does not exist", p.display()));
        }
        push(p, src, &mut out);
    }
    (out, notes)
}

/// `sys.path` of the Python that holds PyTorch (`$SIMCLR_PYTHON`, default `python3`).
fn python_paths() -> Result<Vec<PathBuf>, String> {
    let py = std::env::var("SIMCLR_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let out = std::process::Command::new(&py)
        .args([
            "-c",
            "import sys; print('\\n'.join(p for p in sys.path if p))",
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            format!("could not run {py} (set $SIMCLR_PYTHON) to find site-packages: {e}")
        })?;
    if !out.status.success() {
        return Err(format!("{py} -c 'import sys' failed ({})", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect())
}

/// Every `nvidia/*/lib` (sorted, so `nvidia/cu13/lib` and `nvidia/cudnn/lib` come in a fixed
/// order) and `torch/lib` under one `sys.path` entry.
pub fn wheel_lib_folders(site: &Path) -> Vec<PathBuf> {
    let mut libs = Vec::new();
    if let Ok(rd) = std::fs::read_dir(site.join("nvidia")) {
        for e in rd.flatten() {
            let lib = e.path().join("lib");
            if lib.is_dir() {
                libs.push(lib);
            }
        }
    }
    libs.sort();
    let torch = site.join("torch").join("lib");
    if torch.is_dir() {
        libs.push(torch);
    }
    libs
}

fn load_spec(spec: &Spec, folders: &[(PathBuf, &'static str)]) -> Found {
    let main = spec.files[spec.files.len() - 1];
    let mut f = Found {
        name: spec.name,
        optional: spec.optional,
        ..Found::default()
    };
    let Some(dir) = folders.iter().map(|(d, _)| d).find(|d| {
        let p = d.join(main);
        f.tried.push(p.clone());
        p.is_file()
    }) else {
        return f;
    };
    let mut files: Vec<PathBuf> = spec
        .files
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    if let Some((prefix, suffix)) = spec.family {
        let mut extra: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix) && n.contains(suffix))
            })
            .collect();
        extra.sort();
        files.extend(extra);
    }
    f.errors = load_all(&files);
    let main_path = dir.join(main);
    if f.errors
        .iter()
        .all(|e| !e.starts_with(&main_path.display().to_string()))
    {
        f.path = Some(main_path);
        if let Some(&(stub, _, bytes)) = STUBS.iter().find(|(_, needed, _)| *needed == main) {
            match load_stub(stub, bytes) {
                Ok(()) => f.stub = Some(stub),
                Err(e) => f.errors.push(e),
            }
        }
    }
    f
}

/// Loads every file, retrying those that fail while another round loads something (a file
/// whose dependency comes later in the list loads once that dependency is in). Returns the
/// last error of each file that never loaded, as `path: message`.
fn load_all(files: &[PathBuf]) -> Vec<String> {
    let mut left: Vec<(PathBuf, String)> =
        files.iter().map(|p| (p.clone(), String::new())).collect();
    loop {
        let before = left.len();
        let mut next = Vec::new();
        for (p, _) in left {
            if let Err(e) = dlopen_global(&p) {
                next.push((p, e));
            }
        }
        left = next;
        if left.is_empty() || left.len() == before {
            break;
        }
    }
    left.into_iter()
        .map(|(p, e)| format!("{}: {e}", p.display()))
        .collect()
}

/// `dlopen(path, RTLD_NOW | RTLD_GLOBAL)`, kept open for the life of the process.
pub fn dlopen_global(path: &Path) -> Result<(), String> {
    let c = cstring(&path.display().to_string())?;
    // SAFETY: a NUL-terminated path; the handle is deliberately never closed.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if h.is_null() {
        Err(dlerror())
    } else {
        Ok(())
    }
}

/// `dlopen(path, RTLD_NOW | RTLD_GLOBAL)` returning the handle (never closed): for a library
/// preloaded by [`preload`], the object already loaded.
pub fn open_path(path: &Path) -> Result<Handle, String> {
    let c = cstring(&path.display().to_string())?;
    // SAFETY: a NUL-terminated path; the handle is deliberately never closed.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if h.is_null() {
        Err(dlerror())
    } else {
        Ok(Handle(h))
    }
}

/// Loads an embedded stub through an anonymous file (nothing written to disk).
pub fn load_stub(soname: &str, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let name = cstring(soname)?;
    // SAFETY: a NUL-terminated name; the fd is owned by the File below.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
    if fd < 0 {
        return Err(format!(
            "memfd_create for the {soname} stub: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: fd was just created and is owned by nobody else.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(bytes)
        .map_err(|e| format!("writing the {soname} stub: {e}"))?;
    let path = PathBuf::from(format!("/proc/self/fd/{fd}"));
    let loaded = dlopen_global(&path).map_err(|e| format!("loading the {soname} stub: {e}"));
    // Kept open for the life of the process: glibc matches a later dlopen of the same path
    // string to this object, so a reused fd number would return this stub for another one.
    std::mem::forget(file);
    loaded
}

/// The embedded stubs: (stub soname, the soname it forwards to).
pub fn stubs() -> Vec<(&'static str, &'static str)> {
    STUBS.iter().map(|&(s, n, _)| (s, n)).collect()
}

/// The embedded stub whose soname is `soname`, for tests.
pub fn stub_bytes(soname: &str) -> Option<&'static [u8]> {
    STUBS
        .iter()
        .find(|(s, _, _)| *s == soname)
        .map(|&(_, _, b)| b)
}

/// A live `dlopen` handle (never closed), only made here.
#[derive(Clone, Copy, Debug)]
pub struct Handle(*mut c_void);

/// A handle to an already-loaded library by soname (`RTLD_NOLOAD`: loads nothing new).
pub fn loaded(soname: &str) -> Option<Handle> {
    let c = cstring(soname).ok()?;
    // SAFETY: a NUL-terminated name.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    (!h.is_null()).then_some(Handle(h))
}

/// `dlopen(name, RTLD_NOW | RTLD_LOCAL)` by name through the system's search, as cudarc does.
pub fn open_by_name(name: &str) -> Result<Handle, String> {
    let c = cstring(name)?;
    // SAFETY: a NUL-terminated name.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if h.is_null() {
        Err(dlerror())
    } else {
        Ok(Handle(h))
    }
}

/// The address of `symbol` in (or below) `handle`.
pub fn symbol(handle: Handle, symbol: &str) -> Option<*mut c_void> {
    let c = cstring(symbol).ok()?;
    // SAFETY: a live handle (never closed) and a NUL-terminated name.
    let p = unsafe { libc::dlsym(handle.0, c.as_ptr()) };
    (!p.is_null()).then_some(p)
}

/// The file mapped into this process whose name starts with `prefix` (`/proc/self/maps`).
pub fn mapped_path(prefix: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.starts_with('/') && !p.starts_with("/memfd:"))
        .map(PathBuf::from)
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
}

fn cstring(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{s:?} holds a NUL byte"))
}

fn dlerror() -> String {
    // SAFETY: dlerror returns a thread-local message or null.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown dlopen error".to_string()
    } else {
        // SAFETY: non-null, NUL-terminated.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}
