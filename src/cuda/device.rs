//! Opening devices: one context, one stream, the loaded kernels and the library handles per GPU,
//! kept for the life of the process. `probe` decides once whether CUDA can be used at all,
//! without panicking when a library or the device is missing.

use super::alloc::keep_freed_memory;
use super::driver::{self, cu};
use super::error::{cuda_err, CudaCall};
use super::module::{launch, Kernels, Launch};
use crate::Result;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex, OnceLock};

pub struct Gpu {
    pub ordinal: usize,
    /// The device's context and its one stream.
    pub ctx: cu::Context,
    kernels: Kernels,
    /// Counter (zero between launches) and partial sums of the one-launch `sum_all` kernel.
    pub(crate) sum_scratch: (cu::CUdeviceptr, cu::CUdeviceptr),
    pub(crate) blas: Mutex<Option<super::blas::Blas>>,
    pub(crate) dnn: Mutex<Option<super::dnn::Dnn>>,
    /// The graph pool serving this device's allocations, while one is active.
    pub(crate) graph_pool: Mutex<Option<Arc<super::graph::GraphPool>>>,
}

/// Blocks of the one-launch `sum_all` reduction (its partials buffer has this many floats).
pub const SUM_BLOCKS: usize = 1024;

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gpu(cuda:{})", self.ordinal)
    }
}

impl Gpu {
    fn open(ordinal: usize) -> Result<Self> {
        let ctx = cu::Context::new(ordinal).call(&format!(
            "cuInit/cuDevicePrimaryCtxRetain/cuStreamCreate(cuda:{ordinal})"
        ))?;
        let (major, minor) = ctx
            .compute_capability()
            .call("cuDeviceGetAttribute(compute capability)")?;
        if major < 8 {
            return Err(cuda_err(format!(
                "cuda:{ordinal} has compute capability {major}.{minor}; the kernels need 8.0 or newer"
            )));
        }
        ctx.bind_to_thread().call("cuCtxSetCurrent")?;
        keep_freed_memory(ctx.cu_device())?;
        let kernels = Kernels::load()?;
        // Device-lifetime scratch, never freed (devices live until the process ends).
        let sum_scratch = unsafe {
            let counter = cu::malloc_sync(4).call("cuMemAlloc(sum counter)")?;
            // On the compute stream: a plain cuMemsetD8 runs on the legacy stream, which
            // orders nothing before the non-blocking compute stream's first sum.
            cu::memset_d8_async(counter, 0, 4, ctx.stream())
                .call("cuMemsetD8Async(sum counter)")?;
            let partial = cu::malloc_sync(SUM_BLOCKS * 4).call("cuMemAlloc(sum partials)")?;
            (counter, partial)
        };
        Ok(Gpu {
            ordinal,
            ctx,
            kernels,
            sum_scratch,
            blas: Mutex::new(None),
            dnn: Mutex::new(None),
            graph_pool: Mutex::new(None),
        })
    }

    pub fn cu_stream(&self) -> cu::CUstream {
        self.ctx.stream()
    }

    /// Launches kernel `id` (`kernels::KERNELS`) on this device's stream; `params` holds one
    /// pointer per argument value. Only the generated launchers of `cuda::kernels` call this.
    ///
    /// # Safety
    /// `params` points at values of kernel `id`'s parameter types, in its order, and its device
    /// pointers are valid for what the kernel reads and writes.
    pub(crate) unsafe fn launch(
        &self,
        id: usize,
        cfg: Launch,
        params: &mut [*mut c_void],
    ) -> Result<()> {
        unsafe { launch(&self.kernels, id, cfg, self.cu_stream(), params) }
    }

    pub(crate) fn active_graph_pool(&self) -> Option<Arc<super::graph::GraphPool>> {
        self.graph_pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn synchronize(&self) -> Result<()> {
        self.ctx.synchronize().call("cuStreamSynchronize")
    }
}

/// Whether CUDA is usable (Ok: the number of devices) or why not; computed once.
fn probe() -> &'static std::result::Result<usize, String> {
    static PROBE: OnceLock<std::result::Result<usize, String>> = OnceLock::new();
    PROBE.get_or_init(|| {
        // From here on the tensor reaches this runtime (its errors say why CUDA is unusable).
        super::runtime::register();
        // cudarc panics on some failures of dynamic loading; report those as reasons too.
        std::panic::catch_unwind(probe_uncached)
            .unwrap_or_else(|_| Err("loading the CUDA driver library panicked".to_string()))
    })
}

fn probe_uncached() -> std::result::Result<usize, String> {
    let mode = driver::mode_or_reason().clone()?;
    if mode == driver::Mode::Real {
        // Before cudarc's first dlopen: PyTorch's libraries by absolute path (see libraries.rs).
        driver::libraries::preload();
    }
    let hint = "(looked in $SIMCLR_CUDA_LIBS, python3's site-packages nvidia/*/lib, \
                $CUDA_HOME/lib64 and the system's search; `simclr info --device cuda` lists \
                every path tried)";
    if !cu::is_present() {
        return Err(
            "could not load the CUDA driver library libcuda.so (no NVIDIA driver on this machine?)"
                .into(),
        );
    }
    cu::init().map_err(|e| format!("cuInit failed: {e:?}"))?;
    let n = cu::device_count().map_err(|e| format!("cuDeviceGetCount failed: {e:?}"))?;
    if n <= 0 {
        return Err("the CUDA driver is installed but reports no device".into());
    }
    if !driver::cublas::is_present() {
        return Err(format!(
            "found {n} CUDA device(s) but could not load cuBLAS (libcublas.so) {hint}"
        ));
    }
    if !driver::cudnn::is_present() {
        return Err(format!(
            "found {n} CUDA device(s) but could not load cuDNN (libcudnn.so.9) {hint}"
        ));
    }
    if mode == driver::Mode::Real && !super::module::has_device_code() {
        return Err(
            "this build has no GPU code (built with --features cuda-emu but without nvcc); \
             rebuild with nvcc available, or use the emulated device (--device cuda-emu)"
                .into(),
        );
    }
    Ok(n as usize)
}

pub fn is_available() -> bool {
    probe().is_ok()
}

/// How many devices there are (0 when CUDA cannot be used).
pub fn device_count() -> usize {
    probe().as_ref().map_or(0, |n| *n)
}

pub fn unavailable_reason() -> String {
    match probe() {
        Ok(n) => format!("CUDA is available ({n} device(s))"),
        Err(e) => format!("CUDA is not available: {e}"),
    }
}

/// The opened device `ordinal`, its context bound to the calling thread.
pub fn gpu(ordinal: usize) -> Result<Arc<Gpu>> {
    let count = probe()
        .as_ref()
        .map_err(|e| cuda_err(format!("CUDA is not available: {e}")))?;
    if ordinal >= *count {
        return Err(crate::Error::device(
            "cuda",
            format!("cuda:{ordinal} requested but only {count} device(s) exist"),
        ));
    }
    static GPUS: OnceLock<Mutex<HashMap<usize, Arc<Gpu>>>> = OnceLock::new();
    let mut map = GPUS
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| cuda_err("device registry poisoned"))?;
    let g = match map.get(&ordinal) {
        Some(g) => g.clone(),
        None => {
            // cudarc panics when a loaded library lacks a symbol; report that as an error.
            let g = std::panic::catch_unwind(|| Gpu::open(ordinal)).unwrap_or_else(|_| {
                Err(cuda_err(format!(
                    "opening cuda:{ordinal} panicked inside the CUDA bindings (a library too old?)"
                )))
            })?;
            let g = Arc::new(g);
            map.insert(ordinal, g.clone());
            g
        }
    };
    drop(map);
    g.ctx.bind_to_thread().call("cuCtxSetCurrent")?;
    Ok(g)
}
