//! Loads the kernels that build.rs compiled (one fatbin per `kernels/<family>.cu`) and launches
//! them by symbol name. Naming rule: the Rust op `relu_forward` on a bf16 tensor launches
//! `relu_forward_bf16`; multi-stage ops put the stage before the dtype suffix.

use super::driver::cu;
use super::error::{cuda_err, CudaCall};
use crate::{DType, Result};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Mutex;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/kernels.rs"));
}

/// The kernel symbol of op `name` for `dtype`: `relu_forward` + bf16 → `relu_forward_bf16`.
pub fn symbol(name: &str, dtype: DType) -> Result<String> {
    match dtype {
        DType::F32 => Ok(format!("{name}_f32")),
        DType::BF16 => Ok(format!("{name}_bf16")),
        d => Err(crate::Error::dtype(
            "cuda",
            format!(
                "{name}: the CUDA backend computes in f32 or bf16, not {}",
                d.name()
            ),
        )),
    }
}

/// Whether this build holds GPU code (fatbins); a `cuda-emu` build without nvcc does not.
pub fn has_device_code() -> bool {
    !embedded::MODULES.is_empty()
}

pub struct Kernels {
    modules: Vec<(&'static str, cu::CUmodule)>,
    functions: Mutex<HashMap<String, cu::CUfunction>>,
}

// Module and function handles are plain identifiers, valid in any thread of the context.
unsafe impl Send for Kernels {}
unsafe impl Sync for Kernels {}

impl Kernels {
    /// Loads every embedded module into the current context (the driver picks sm_90 SASS on
    /// H100 and JIT-compiles the compute_80 PTX elsewhere).
    pub fn load() -> Result<Self> {
        let mut modules = Vec::new();
        for &(family, image) in embedded::MODULES {
            let m = unsafe { cu::module_load(family, image) }
                .call(&format!("cuModuleLoadData(kernels/{family}.cu)"))?;
            modules.push((family, m));
        }
        Ok(Kernels {
            modules,
            functions: Mutex::new(HashMap::new()),
        })
    }

    pub fn function(&self, name: &str) -> Result<cu::CUfunction> {
        let mut map = self
            .functions
            .lock()
            .map_err(|_| cuda_err("kernel cache poisoned"))?;
        if let Some(&f) = map.get(name) {
            return Ok(f);
        }
        for &(_, m) in &self.modules {
            if let Ok(f) = unsafe { cu::module_get_function(m, name) } {
                map.insert(name.to_string(), f);
                return Ok(f);
            }
        }
        Err(cuda_err(format!("no kernel named {name} in kernels/*.cu")))
    }
}

/// One kernel argument, passed by value.
#[derive(Clone, Copy, Debug)]
pub enum Arg {
    Ptr(cu::CUdeviceptr),
    I32(i32),
    I64(i64),
    F32(f32),
}

/// Grid and block sizes of a launch.
#[derive(Clone, Copy, Debug)]
pub struct Launch {
    pub grid: (u32, u32, u32),
    pub block: (u32, u32, u32),
}

/// Threads per block of the flat elementwise kernels.
pub const THREADS: u32 = 256;

impl Launch {
    /// A grid-stride launch over n elements (the kernels loop, so the grid may be capped).
    pub fn flat(n: usize) -> Self {
        let blocks = n.div_ceil(THREADS as usize).clamp(1, 65_535 * 8) as u32;
        Launch {
            grid: (blocks, 1, 1),
            block: (THREADS, 1, 1),
        }
    }
    /// One block of `threads` per row.
    pub fn rows(rows: usize, threads: u32) -> Self {
        Launch {
            grid: (rows.max(1) as u32, 1, 1),
            block: (threads, 1, 1),
        }
    }
    /// Column reductions: 32 channels by COL_ROWS (8) rows per block, `y` blocks down.
    pub fn columns(c: usize, y: usize) -> Self {
        Launch {
            grid: (c.div_ceil(32).max(1) as u32, y.max(1) as u32, 1),
            block: (32, 8, 1),
        }
    }
}

/// Launches `f` on `stream` with `args` (copied, so the launch does not borrow them).
pub fn launch(
    f: cu::CUfunction,
    name: &str,
    cfg: Launch,
    stream: cu::CUstream,
    args: &[Arg],
) -> Result<()> {
    // u64 slots keep every value 8-byte aligned; the driver reads each parameter's own size.
    let mut vals: Vec<u64> = args
        .iter()
        .map(|a| match *a {
            Arg::Ptr(p) => p,
            Arg::I64(v) => u64::from_ne_bytes(v.to_ne_bytes()),
            Arg::I32(v) => {
                let mut b = [0u8; 8];
                b[..4].copy_from_slice(&v.to_ne_bytes());
                u64::from_ne_bytes(b)
            }
            Arg::F32(v) => {
                let mut b = [0u8; 8];
                b[..4].copy_from_slice(&v.to_ne_bytes());
                u64::from_ne_bytes(b)
            }
        })
        .collect();
    let mut ptrs: Vec<*mut c_void> = vals
        .iter_mut()
        .map(|v| v as *mut u64 as *mut c_void)
        .collect();
    unsafe { cu::launch_kernel(f, cfg.grid, cfg.block, 0, stream, &mut ptrs) }
        .call(&format!("cuLaunchKernel({name})"))
}
