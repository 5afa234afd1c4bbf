//! nvJPEG (CUDA 13, `libnvjpeg.so.13`): JPEG decoding on the GPU, loaded at run time.
//!
//! Real mode: the library is found and preloaded by absolute path with the others
//! (`libraries.rs`, an optional library: its absence fails nothing) and its entry points are
//! resolved once with `dlsym` into a function table. nvJPEG is self-contained and works in the
//! primary context of the current device. Emulated mode (`cuda-emu`): `crate::cuda::emu::nvjpeg`
//! checks the arguments as nvJPEG documents them and decodes with the CPU decoder into checked
//! device memory. Every decode call (single or batched) counts as one library call; the
//! header parse, the support query and the pre-allocation enqueue no work and are not counted.

use super::counters::{self as c, bump};
use super::cu::CUstream;
use super::libraries;
use super::route;
use crate::abi;
use std::collections::HashMap;
use std::ffi::{c_int, c_uint, c_void};
use std::sync::{Mutex, OnceLock};

pub type NvjpegHandle = *mut c_void;
pub type NvjpegState = *mut c_void;
/// nvjpegJpegStream_t: a parsed bitstream's header, on the host.
pub type NvjpegJpegStream = *mut c_void;

/// NVJPEG_MAX_COMPONENT: the planes of an nvjpegImage_t, the widths and heights of
/// nvjpegGetImageInfo.
pub const MAX_COMPONENT: usize = 4;

/// nvjpegImage_t
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvjpegImage {
    pub channel: [*mut u8; MAX_COMPONENT],
    pub pitch: [usize; MAX_COMPONENT],
}

impl NvjpegImage {
    /// One interleaved plane (RGBI): `pitch` bytes between rows starting at `ptr`.
    pub fn interleaved(ptr: *mut u8, pitch: usize) -> Self {
        NvjpegImage {
            channel: [
                ptr,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            ],
            pitch: [pitch, 0, 0, 0],
        }
    }
}

/// nvjpegBackend_t
pub const BACKEND_DEFAULT: i32 = 0;
pub const BACKEND_HYBRID: i32 = 1;
pub const BACKEND_GPU_HYBRID: i32 = 2;
pub const BACKEND_HARDWARE: i32 = 3;
/// nvjpegOutputFormat_t: interleaved RGB, one plane.
pub const OUTPUT_RGBI: i32 = 5;
/// The largest nvjpegOutputFormat_t value (NVJPEG_OUTPUT_FORMAT_MAX).
pub const OUTPUT_FORMAT_MAX: i32 = 9;

/// nvjpegChromaSubsampling_t values (CSS_UNKNOWN is -1).
pub const CSS_444: i32 = 0;
pub const CSS_422: i32 = 1;
pub const CSS_420: i32 = 2;
pub const CSS_440: i32 = 3;
pub const CSS_411: i32 = 4;
pub const CSS_410: i32 = 5;
pub const CSS_GRAY: i32 = 6;
pub const CSS_410V: i32 = 7;
pub const CSS_UNKNOWN: i32 = -1;

/// nvjpegStatus_t values.
pub const STATUS_SUCCESS: i32 = 0;
pub const STATUS_NOT_INITIALIZED: i32 = 1;
pub const STATUS_INVALID_PARAMETER: i32 = 2;
pub const STATUS_BAD_JPEG: i32 = 3;
pub const STATUS_JPEG_NOT_SUPPORTED: i32 = 4;
pub const STATUS_ALLOCATOR_FAILURE: i32 = 5;
pub const STATUS_EXECUTION_FAILED: i32 = 6;
pub const STATUS_ARCH_MISMATCH: i32 = 7;
pub const STATUS_INTERNAL_ERROR: i32 = 8;
pub const STATUS_IMPLEMENTATION_NOT_SUPPORTED: i32 = 9;
pub const STATUS_INCOMPLETE_BITSTREAM: i32 = 10;

const STATUS_NAMES: [&str; 11] = [
    "NVJPEG_STATUS_SUCCESS",
    "NVJPEG_STATUS_NOT_INITIALIZED",
    "NVJPEG_STATUS_INVALID_PARAMETER",
    "NVJPEG_STATUS_BAD_JPEG",
    "NVJPEG_STATUS_JPEG_NOT_SUPPORTED",
    "NVJPEG_STATUS_ALLOCATOR_FAILURE",
    "NVJPEG_STATUS_EXECUTION_FAILED",
    "NVJPEG_STATUS_ARCH_MISMATCH",
    "NVJPEG_STATUS_INTERNAL_ERROR",
    "NVJPEG_STATUS_IMPLEMENTATION_NOT_SUPPORTED",
    "NVJPEG_STATUS_INCOMPLETE_BITSTREAM",
];

/// Our constants by their names in nvjpeg.h, for tests/library_headers.rs (the status names
/// with their values: each one's index).
pub fn declared_constants() -> Vec<(&'static str, i64)> {
    let mut v: Vec<(&'static str, i64)> = vec![
        ("NVJPEG_BACKEND_DEFAULT", BACKEND_DEFAULT.into()),
        ("NVJPEG_BACKEND_HYBRID", BACKEND_HYBRID.into()),
        ("NVJPEG_BACKEND_GPU_HYBRID", BACKEND_GPU_HYBRID.into()),
        ("NVJPEG_BACKEND_HARDWARE", BACKEND_HARDWARE.into()),
        ("NVJPEG_OUTPUT_RGBI", OUTPUT_RGBI.into()),
        ("NVJPEG_OUTPUT_FORMAT_MAX", OUTPUT_FORMAT_MAX.into()),
        ("NVJPEG_CSS_444", CSS_444.into()),
        ("NVJPEG_CSS_422", CSS_422.into()),
        ("NVJPEG_CSS_420", CSS_420.into()),
        ("NVJPEG_CSS_440", CSS_440.into()),
        ("NVJPEG_CSS_411", CSS_411.into()),
        ("NVJPEG_CSS_410", CSS_410.into()),
        ("NVJPEG_CSS_GRAY", CSS_GRAY.into()),
        ("NVJPEG_CSS_410V", CSS_410V.into()),
        ("NVJPEG_CSS_UNKNOWN", CSS_UNKNOWN.into()),
        ("NVJPEG_MAX_COMPONENT", MAX_COMPONENT as i64),
    ];
    v.extend(STATUS_NAMES.iter().enumerate().map(|(i, n)| (*n, i as i64)));
    v
}

/// The layout of nvjpegImage_t as we declare it: its size, then each field's offset, for
/// tests/library_headers.rs.
pub fn declared_layouts() -> Vec<abi::Layout> {
    vec![(
        "nvjpegImage_t",
        std::mem::size_of::<NvjpegImage>(),
        vec![
            ("channel", std::mem::offset_of!(NvjpegImage, channel)),
            ("pitch", std::mem::offset_of!(NvjpegImage, pitch)),
        ],
    )]
}

/// The name of an nvjpegStatus_t (`NVJPEG_STATUS_UNKNOWN` outside 0..=10).
pub fn status_name(status: i32) -> &'static str {
    usize::try_from(status)
        .ok()
        .and_then(|i| STATUS_NAMES.get(i))
        .copied()
        .unwrap_or("NVJPEG_STATUS_UNKNOWN")
}

/// A failed call: the status (nvjpegStatus_t) and, in emulation, what was wrong.
#[derive(Clone)]
pub struct NvjpegError {
    pub status: i32,
    pub detail: String,
}

impl NvjpegError {
    pub fn new(status: i32, detail: impl Into<String>) -> Self {
        NvjpegError {
            status,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for NvjpegError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", status_name(self.status), self.status)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for NvjpegError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for NvjpegError {}

pub type Result<T> = std::result::Result<T, NvjpegError>;

fn check(status: c_int) -> Result<()> {
    if status == STATUS_SUCCESS {
        Ok(())
    } else {
        Err(NvjpegError::new(status, ""))
    }
}

type GetProperty = unsafe extern "C" fn(c_int, *mut c_int) -> c_int;
type CreateEx =
    unsafe extern "C" fn(c_int, *mut c_void, *mut c_void, c_uint, *mut NvjpegHandle) -> c_int;
type Destroy = unsafe extern "C" fn(NvjpegHandle) -> c_int;
type StateCreate = unsafe extern "C" fn(NvjpegHandle, *mut NvjpegState) -> c_int;
type StateDestroy = unsafe extern "C" fn(NvjpegState) -> c_int;
type GetImageInfo = unsafe extern "C" fn(
    NvjpegHandle,
    *const u8,
    usize,
    *mut c_int,
    *mut c_int,
    *mut c_int,
    *mut c_int,
) -> c_int;
type Decode = unsafe extern "C" fn(
    NvjpegHandle,
    NvjpegState,
    *const u8,
    usize,
    c_int,
    *mut NvjpegImage,
    CUstream,
) -> c_int;
type BatchedInitialize =
    unsafe extern "C" fn(NvjpegHandle, NvjpegState, c_int, c_int, c_int) -> c_int;
type DecodeBatched = unsafe extern "C" fn(
    NvjpegHandle,
    NvjpegState,
    *const *const u8,
    *const usize,
    *mut NvjpegImage,
    CUstream,
) -> c_int;

type StreamCreate = unsafe extern "C" fn(NvjpegHandle, *mut NvjpegJpegStream) -> c_int;
type StreamDestroy = unsafe extern "C" fn(NvjpegJpegStream) -> c_int;
type StreamParseHeader =
    unsafe extern "C" fn(NvjpegHandle, *const u8, usize, NvjpegJpegStream) -> c_int;
type BatchedSupported = unsafe extern "C" fn(NvjpegHandle, NvjpegJpegStream, *mut c_int) -> c_int;
type BatchedPreAllocate =
    unsafe extern "C" fn(NvjpegHandle, NvjpegState, c_int, c_int, c_int, c_int, c_int) -> c_int;

/// The entry points we use, each once: its field, its signature (from nvjpeg.h, CUDA 13.0) and
/// its symbol. Gives the table, its loading, and [`declared_shapes`] for the header check.
macro_rules! entry_points {
    ($($field:ident: $ty:ty = $sym:literal,)*) => {
        struct Table {
            $($field: $ty,)*
        }

        fn load() -> std::result::Result<Table, String> {
            let (handle, from) = open()?;
            let sym = |name: &str| {
                libraries::symbol(handle, name).ok_or_else(|| format!("{from} has no symbol {name}"))
            };
            // SAFETY: each symbol is transmuted to its signature in nvjpeg.h (CUDA 13.0), which
            // tests/library_headers.rs holds against the header; the library stays loaded for
            // the life of the process.
            unsafe {
                Ok(Table {
                    $($field: std::mem::transmute::<*mut c_void, $ty>(sym($sym)?),)*
                })
            }
        }

        /// Each entry point's symbol and the shape of the signature we call it with
        /// (`abi::Shape`), for tests/library_headers.rs.
        pub fn declared_shapes() -> Vec<(&'static str, String)> {
            vec![$(($sym, abi::shape_of::<$ty>()),)*]
        }
    };
}

entry_points! {
    get_property: GetProperty = "nvjpegGetProperty",
    create_ex: CreateEx = "nvjpegCreateEx",
    destroy: Destroy = "nvjpegDestroy",
    state_create: StateCreate = "nvjpegJpegStateCreate",
    state_destroy: StateDestroy = "nvjpegJpegStateDestroy",
    get_image_info: GetImageInfo = "nvjpegGetImageInfo",
    decode: Decode = "nvjpegDecode",
    decode_batched_initialize: BatchedInitialize = "nvjpegDecodeBatchedInitialize",
    decode_batched: DecodeBatched = "nvjpegDecodeBatched",
    stream_create: StreamCreate = "nvjpegJpegStreamCreate",
    stream_destroy: StreamDestroy = "nvjpegJpegStreamDestroy",
    stream_parse_header: StreamParseHeader = "nvjpegJpegStreamParseHeader",
    decode_batched_supported: BatchedSupported = "nvjpegDecodeBatchedSupported",
    decode_batched_pre_allocate: BatchedPreAllocate = "nvjpegDecodeBatchedPreAllocate",
}

/// The function table of the real library, resolved once, or why it cannot be.
fn table() -> std::result::Result<&'static Table, String> {
    static TABLE: OnceLock<std::result::Result<Table, String>> = OnceLock::new();
    TABLE.get_or_init(load).as_ref().map_err(Clone::clone)
}

/// Where discovery looked, for the message when nvJPEG is not there.
fn not_found(f: Option<&libraries::Found>, by_name: &str) -> String {
    let mut m = format!("nvJPEG ({}) was not found", libraries::NVJPEG_FILE);
    match f {
        Some(f) if !f.tried.is_empty() => {
            let tried: Vec<String> = f.tried.iter().map(|p| p.display().to_string()).collect();
            m += &format!("; tried {}", tried.join(", "));
        }
        _ => m += "; no library folder to look in ($SIMCLR_CUDA_LIBS, the python's nvidia/*/lib, $CUDA_HOME/lib64, /usr/local/cuda/lib64)",
    }
    for e in f.map(|f| f.errors.as_slice()).unwrap_or_default() {
        m += &format!("; dlopen failed: {e}");
    }
    m + &format!(
        "; by name through the system's search: {by_name} (install the nvidia-nvjpeg wheel \
         or name its folder in $SIMCLR_CUDA_LIBS)"
    )
}

/// The loaded library and where it came from.
fn open() -> std::result::Result<(libraries::Handle, String), String> {
    let d = libraries::preload();
    let found = d.library(libraries::NVJPEG);
    match found.and_then(|f| f.path.clone()) {
        Some(p) => Ok((libraries::open_path(&p)?, p.display().to_string())),
        None => match libraries::open_by_name(libraries::NVJPEG_FILE) {
            Ok(h) => Ok((h, format!("{} (system search)", libraries::NVJPEG_FILE))),
            Err(e) => Err(not_found(found, &e)),
        },
    }
}

/// The table, or NOT_INITIALIZED saying why there is none.
fn real_table() -> Result<&'static Table> {
    table().map_err(|e| NvjpegError::new(STATUS_NOT_INITIALIZED, e))
}

/// Ok when nvJPEG can be called in this process; Err with why not (real mode: the library was
/// not found — the folders/paths searched are named — or a symbol is missing).
pub fn available() -> std::result::Result<(), String> {
    route!(
        real => table().map(|_| ()),
        emu => crate::cuda::emu::nvjpeg::available(),
    )
}

/// "13.0.4" style (nvjpegGetProperty MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL), when loaded.
pub fn version() -> Option<String> {
    route!(
        real => {
            let t = table().ok()?;
            let mut v = [0 as c_int; 3];
            for (i, slot) in v.iter_mut().enumerate() {
                // SAFETY: libraryPropertyType 0, 1, 2 and a valid out pointer.
                if unsafe { (t.get_property)(i as c_int, slot) } != STATUS_SUCCESS {
                    return None;
                }
            }
            Some(format!("{}.{}.{}", v[0], v[1], v[2]))
        },
        emu => Some(crate::cuda::emu::nvjpeg::VERSION.to_string()),
    )
}

/// `nvjpegCreateEx(backend, NULL, NULL, 0, &h)`: default allocators, no flags.
pub fn create(backend: i32) -> Result<NvjpegHandle> {
    route!(
        real => {
            let t = real_table()?;
            let mut h: NvjpegHandle = std::ptr::null_mut();
            // SAFETY: null allocators select cudaMalloc/cudaHostAlloc; flags must be 0.
            check(unsafe {
                (t.create_ex)(backend, std::ptr::null_mut(), std::ptr::null_mut(), 0, &mut h)
            })?;
            Ok(h)
        },
        emu => crate::cuda::emu::nvjpeg::create(backend),
    )
}

/// nvjpegDestroy.
///
/// # Safety
/// A handle from [`create`], no longer used by any state.
pub unsafe fn destroy(h: NvjpegHandle) -> Result<()> {
    route!(
        real => check((real_table()?.destroy)(h)),
        emu => crate::cuda::emu::nvjpeg::destroy(h),
    )
}

/// nvjpegJpegStateCreate.
// nvJPEG checks its handles (NULL is INVALID_PARAMETER); the API keeps these calls safe.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn state_create(h: NvjpegHandle) -> Result<NvjpegState> {
    route!(
        real => {
            let t = real_table()?;
            let mut s: NvjpegState = std::ptr::null_mut();
            // SAFETY: nvJPEG validates the handle; `s` is a valid out pointer.
            check(unsafe { (t.state_create)(h, &mut s) })?;
            Ok(s)
        },
        emu => crate::cuda::emu::nvjpeg::state_create(h),
    )
}

/// nvjpegJpegStateDestroy.
///
/// # Safety
/// A state from [`state_create`].
pub unsafe fn state_destroy(s: NvjpegState) -> Result<()> {
    forget_batch(s);
    route!(
        real => check((real_table()?.state_destroy)(s)),
        emu => crate::cuda::emu::nvjpeg::state_destroy(s),
    )
}

/// (components, widths[4], heights[4]) of a JPEG (nvjpegGetImageInfo; the subsampling is
/// dropped).
// nvJPEG checks its handles (NULL is INVALID_PARAMETER); the API keeps these calls safe.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn image_info(
    h: NvjpegHandle,
    data: &[u8],
) -> Result<(i32, [i32; MAX_COMPONENT], [i32; MAX_COMPONENT])> {
    route!(
        real => {
            let t = real_table()?;
            let (mut n, mut css) = (0 as c_int, 0 as c_int);
            let (mut w, mut hh) = ([0 as c_int; MAX_COMPONENT], [0 as c_int; MAX_COMPONENT]);
            // SAFETY: `data` is readable for its length; the outputs hold NVJPEG_MAX_COMPONENT
            // ints each.
            check(unsafe {
                (t.get_image_info)(
                    h,
                    data.as_ptr(),
                    data.len(),
                    &mut n,
                    &mut css,
                    w.as_mut_ptr(),
                    hh.as_mut_ptr(),
                )
            })?;
            Ok((n, w, hh))
        },
        emu => crate::cuda::emu::nvjpeg::image_info(h, data),
    )
}

/// The batch size each state was initialised for (real mode): the C call reads `batch_size`
/// entries of every array, so a call with another count is refused before it reaches nvJPEG.
static BATCHES: Mutex<Option<HashMap<usize, i32>>> = Mutex::new(None);

fn batches() -> std::sync::MutexGuard<'static, Option<HashMap<usize, i32>>> {
    BATCHES.lock().unwrap_or_else(|p| p.into_inner())
}

fn forget_batch(s: NvjpegState) {
    if let Some(m) = batches().as_mut() {
        m.remove(&(s as usize));
    }
}

/// nvjpegDecodeBatchedInitialize.
///
/// # Safety
/// A handle and a state of that handle.
pub unsafe fn decode_batched_initialize(
    h: NvjpegHandle,
    s: NvjpegState,
    batch_size: i32,
    max_cpu_threads: i32,
    output_format: i32,
) -> Result<()> {
    route!(
        real => {
            check((real_table()?.decode_batched_initialize)(
                h,
                s,
                batch_size,
                max_cpu_threads,
                output_format,
            ))?;
            batches()
                .get_or_insert_with(HashMap::new)
                .insert(s as usize, batch_size);
            Ok(())
        },
        emu => crate::cuda::emu::nvjpeg::decode_batched_initialize(
            h,
            s,
            batch_size,
            max_cpu_threads,
            output_format,
        ),
    )
}

/// nvjpegDecodeBatched on `stream` (a driver CUstream, same as cudaStream_t).
///
/// # Safety
/// A handle, a state initialised with [`decode_batched_initialize`] for `data.len()` images,
/// and destinations in device memory of the current context large enough for each image.
pub unsafe fn decode_batched(
    h: NvjpegHandle,
    s: NvjpegState,
    data: &[&[u8]],
    destinations: &mut [NvjpegImage],
    stream: CUstream,
) -> Result<()> {
    bump(&c::LIBRARY_CALLS, 1);
    if data.len() != destinations.len() {
        return Err(NvjpegError::new(
            STATUS_INVALID_PARAMETER,
            format!(
                "nvjpegDecodeBatched: {} images but {} destinations",
                data.len(),
                destinations.len()
            ),
        ));
    }
    route!(
        real => {
            let t = real_table()?;
            let init = batches().as_ref().and_then(|m| m.get(&(s as usize)).copied());
            if init != Some(data.len() as i32) {
                return Err(NvjpegError::new(
                    STATUS_INVALID_PARAMETER,
                    match init {
                        Some(b) => format!(
                            "nvjpegDecodeBatched: {} images for a state initialised for {b}",
                            data.len()
                        ),
                        None => "nvjpegDecodeBatched: the state was not initialised with \
                                 nvjpegDecodeBatchedInitialize"
                            .to_string(),
                    },
                ));
            }
            let ptrs: Vec<*const u8> = data.iter().map(|d| d.as_ptr()).collect();
            let lens: Vec<usize> = data.iter().map(|d| d.len()).collect();
            check((t.decode_batched)(
                h,
                s,
                ptrs.as_ptr(),
                lens.as_ptr(),
                destinations.as_mut_ptr(),
                stream,
            ))
        },
        emu => crate::cuda::emu::nvjpeg::decode_batched(h, s, data, destinations, stream),
    )
}

/// nvjpegDecode, one image.
///
/// # Safety
/// A handle, a state of it, and a destination in device memory large enough for the image.
pub unsafe fn decode(
    h: NvjpegHandle,
    s: NvjpegState,
    data: &[u8],
    output_format: i32,
    destination: &mut NvjpegImage,
    stream: CUstream,
) -> Result<()> {
    bump(&c::LIBRARY_CALLS, 1);
    route!(
        real => check((real_table()?.decode)(
            h,
            s,
            data.as_ptr(),
            data.len(),
            output_format,
            destination,
            stream,
        )),
        emu => crate::cuda::emu::nvjpeg::decode(h, s, data, output_format, destination, stream),
    )
}

/// nvjpegJpegStreamCreate: a holder of one bitstream's parsed header, reused for every image.
// nvJPEG checks its handles (NULL is INVALID_PARAMETER); the API keeps these calls safe.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn jpeg_stream_create(h: NvjpegHandle) -> Result<NvjpegJpegStream> {
    route!(
        real => {
            let t = real_table()?;
            let mut js: NvjpegJpegStream = std::ptr::null_mut();
            // SAFETY: nvJPEG validates the handle; `js` is a valid out pointer.
            check(unsafe { (t.stream_create)(h, &mut js) })?;
            Ok(js)
        },
        emu => crate::cuda::emu::nvjpeg::jpeg_stream_create(h),
    )
}

/// nvjpegJpegStreamDestroy.
///
/// # Safety
/// A stream from [`jpeg_stream_create`], not used afterwards.
pub unsafe fn jpeg_stream_destroy(js: NvjpegJpegStream) -> Result<()> {
    route!(
        real => check((real_table()?.stream_destroy)(js)),
        emu => crate::cuda::emu::nvjpeg::jpeg_stream_destroy(js),
    )
}

/// nvjpegJpegStreamParseHeader: the headers of `data` into `js`, replacing what it held.
// nvJPEG checks its handles (NULL is INVALID_PARAMETER); the API keeps these calls safe.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn jpeg_stream_parse_header(h: NvjpegHandle, data: &[u8], js: NvjpegJpegStream) -> Result<()> {
    route!(
        real => {
            let t = real_table()?;
            // SAFETY: `data` is readable for its length during the call.
            check(unsafe { (t.stream_parse_header)(h, data.as_ptr(), data.len(), js) })
        },
        emu => crate::cuda::emu::nvjpeg::jpeg_stream_parse_header(h, data, js),
    )
}

/// nvjpegDecodeBatchedSupported: whether nvjpegDecodeBatched with `h`'s backend decodes the
/// JPEG whose header `js` holds. nvjpeg.h's `is_supported` is 0 for yes; this returns `true`
/// then.
// nvJPEG checks its handles (NULL is INVALID_PARAMETER); the API keeps these calls safe.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn decode_batched_supported(h: NvjpegHandle, js: NvjpegJpegStream) -> Result<bool> {
    route!(
        real => {
            let t = real_table()?;
            // -1 until nvJPEG answers: a call that writes nothing reads as "not supported".
            let mut is_supported: c_int = -1;
            // SAFETY: nvJPEG validates the handle and stream; a valid out pointer.
            check(unsafe { (t.decode_batched_supported)(h, js, &mut is_supported) })?;
            Ok(is_supported == 0)
        },
        emu => crate::cuda::emu::nvjpeg::decode_batched_supported(h, js),
    )
}

/// nvjpegDecodeBatchedPreAllocate: a hint to allocate the state's buffers now for batches of
/// `batch_size` images up to `width` x `height` of `chroma_subsampling`
/// (nvjpegChromaSubsampling_t), decoded to `output_format`; nvJPEG still grows them for larger
/// images. The hardware decoder's (DALI and nvImageCodec call it for that backend only).
///
/// # Safety
/// A handle and a state of that handle.
pub unsafe fn decode_batched_pre_allocate(
    h: NvjpegHandle,
    s: NvjpegState,
    batch_size: i32,
    width: i32,
    height: i32,
    chroma_subsampling: i32,
    output_format: i32,
) -> Result<()> {
    route!(
        real => check((real_table()?.decode_batched_pre_allocate)(
            h,
            s,
            batch_size,
            width,
            height,
            chroma_subsampling,
            output_format,
        )),
        emu => crate::cuda::emu::nvjpeg::decode_batched_pre_allocate(
            h,
            s,
            batch_size,
            width,
            height,
            chroma_subsampling,
            output_format,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_its_name() {
        assert_eq!(status_name(0), "NVJPEG_STATUS_SUCCESS");
        assert_eq!(status_name(3), "NVJPEG_STATUS_BAD_JPEG");
        assert_eq!(status_name(10), "NVJPEG_STATUS_INCOMPLETE_BITSTREAM");
        assert_eq!(status_name(11), "NVJPEG_STATUS_UNKNOWN");
        assert_eq!(status_name(-1), "NVJPEG_STATUS_UNKNOWN");
        for s in 0..=10 {
            assert!(status_name(s).starts_with("NVJPEG_STATUS_"), "{s}");
        }
        let e = NvjpegError::new(STATUS_BAD_JPEG, "");
        assert_eq!(format!("{e}"), "NVJPEG_STATUS_BAD_JPEG (3)");
        assert_eq!(format!("{e:?}"), "NVJPEG_STATUS_BAD_JPEG (3)");
        let e = NvjpegError::new(STATUS_INVALID_PARAMETER, "state 0x10 is not live");
        assert_eq!(
            format!("{e:?}"),
            "NVJPEG_STATUS_INVALID_PARAMETER (2): state 0x10 is not live"
        );
    }

    #[test]
    fn the_not_found_message_names_what_was_tried() {
        let f = libraries::Found {
            name: libraries::NVJPEG,
            tried: vec![
                "/a/lib/libnvjpeg.so.13".into(),
                "/usr/local/cuda/lib64/libnvjpeg.so.13".into(),
            ],
            optional: true,
            ..Default::default()
        };
        let m = not_found(Some(&f), "libnvjpeg.so.13: cannot open shared object file");
        assert!(m.contains("/a/lib/libnvjpeg.so.13"), "{m}");
        assert!(m.contains("/usr/local/cuda/lib64/libnvjpeg.so.13"), "{m}");
        assert!(m.contains("system's search"), "{m}");
        assert!(not_found(None, "x").contains("$SIMCLR_CUDA_LIBS"));
    }
}
