//! Loads the kernels that build.rs compiled (one fatbin per `kernels/<family>.cu`) and launches
//! them by kernel id (`kernels::KERNELS`): each id's function is looked up once per device, in
//! the module its signature names, so a launch formats, locks and hashes nothing. Grid and
//! block sizes are checked against the device limits before the launch.

use super::driver::cu;
use super::error::{cuda_err, CudaCall};
use super::kernels::KERNELS;
use crate::Result;
use std::ffi::c_void;
use std::sync::OnceLock;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/kernels.rs"));
}

/// Whether this build holds GPU code (fatbins); a `cuda-emu` build without nvcc does not.
pub fn has_device_code() -> bool {
    !embedded::MODULES.is_empty()
}

/// The loaded modules and, per kernel id (`kernels::KERNELS`), its function handle, resolved
/// on first use in the module the kernel's signature names.
pub struct Kernels {
    modules: Vec<(&'static str, cu::CUmodule)>,
    functions: Box<[OnceLock<cu::CUfunction>]>,
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
            functions: KERNELS.iter().map(|_| OnceLock::new()).collect(),
        })
    }

    /// The function of kernel `id`: a table read after its first use.
    pub fn function(&self, id: usize) -> Result<cu::CUfunction> {
        let cell = self
            .functions
            .get(id)
            .ok_or_else(|| cuda_err(format!("no kernel with id {id}")))?;
        if let Some(&f) = cell.get() {
            return Ok(f);
        }
        let k = KERNELS[id];
        let &(_, m) = self
            .modules
            .iter()
            .find(|(name, _)| *name == k.module)
            .ok_or_else(|| {
                cuda_err(format!(
                    "kernel {} belongs to kernels/{}.cu, which this build did not load",
                    k.symbol, k.module
                ))
            })?;
        let f = unsafe { cu::module_get_function(m, k.symbol) }.call(&format!(
            "cuModuleGetFunction({} in kernels/{}.cu)",
            k.symbol, k.module
        ))?;
        // Two threads may race to the first lookup; both find the same handle.
        Ok(*cell.get_or_init(|| f))
    }
}

/// Grid and block sizes of a launch. Grid sizes are kept as computed (`usize`) and checked
/// against the device limits when launched, so an oversized grid is an error, not a wrap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Launch {
    pub grid: (usize, usize, usize),
    pub block: (u32, u32, u32),
}

/// Grid or block extents as the driver takes them.
pub type Dim3 = (u32, u32, u32);

/// Threads per block of the flat elementwise kernels.
pub const THREADS: u32 = 256;

/// Largest grid.x, and largest grid.y / grid.z, of a launch (every GPU since compute 3.0).
pub const MAX_GRID_X: usize = (1 << 31) - 1;
pub const MAX_GRID_YZ: usize = 65_535;
/// Largest block, in threads, and its largest z extent.
pub const MAX_BLOCK_THREADS: u32 = 1024;
pub const MAX_BLOCK_Z: u32 = 64;

impl Launch {
    /// A grid-stride launch over n elements (the kernels loop, so the grid may be capped).
    pub fn flat(n: usize) -> Self {
        Launch {
            grid: (n.div_ceil(THREADS as usize).clamp(1, 65_535 * 8), 1, 1),
            block: (THREADS, 1, 1),
        }
    }
    /// A grid-stride launch over n elements taken 8 per thread (kernels/vec.cuh `flat_chunks`).
    pub fn flat8(n: usize) -> Self {
        Launch::flat(n.div_ceil(8))
    }
    /// One block of `threads` per row.
    pub fn rows(rows: usize, threads: u32) -> Self {
        Launch {
            grid: (rows.max(1), 1, 1),
            block: (threads, 1, 1),
        }
    }
    /// Column reductions: 32 channels by COL_ROWS (8) rows per block, `y` blocks down.
    pub fn columns(c: usize, y: usize) -> Self {
        Launch {
            grid: (c.div_ceil(32).max(1), y.max(1), 1),
            block: (32, 8, 1),
        }
    }

    /// The grid and block as the driver takes them, or why the device cannot run them.
    pub fn checked(&self) -> std::result::Result<(Dim3, Dim3), String> {
        let (gx, gy, gz) = self.grid;
        let (bx, by, bz) = self.block;
        let fit = |v: usize, max: usize, what: &str| match u32::try_from(v) {
            Ok(u) if (1..=max).contains(&v) => Ok(u),
            _ => Err(format!("{what} = {v} is outside 1..={max}")),
        };
        let grid = (
            fit(gx, MAX_GRID_X, "grid.x")?,
            fit(gy, MAX_GRID_YZ, "grid.y")?,
            fit(gz, MAX_GRID_YZ, "grid.z")?,
        );
        let threads = u64::from(bx) * u64::from(by) * u64::from(bz);
        if threads == 0 || threads > u64::from(MAX_BLOCK_THREADS) || bz > MAX_BLOCK_Z {
            return Err(format!(
                "block ({bx}, {by}, {bz}) is not a block of 1..={MAX_BLOCK_THREADS} threads \
                 with z at most {MAX_BLOCK_Z}"
            ));
        }
        Ok((grid, self.block))
    }
}

/// Launches kernel `id` on `stream`; `params` holds one pointer per argument value, in order.
///
/// # Safety
/// As `Gpu::launch`: `params` matches kernel `id`'s parameter list.
pub unsafe fn launch(
    kernels: &Kernels,
    id: usize,
    cfg: Launch,
    stream: cu::CUstream,
    params: &mut [*mut c_void],
) -> Result<()> {
    let symbol = || KERNELS.get(id).map_or("?", |k| k.symbol);
    let (grid, block) = cfg
        .checked()
        .map_err(|e| cuda_err(format!("launching {}: {e}", symbol())))?;
    let f = kernels.function(id)?;
    unsafe { cu::launch_kernel(f, grid, block, 0, stream, params) }
        .map_err(|e| cuda_err(format!("cuLaunchKernel({}): {e:?}", symbol())))
}

/// Threads per block of the row kernels (softmax, loss, normalisation): whole warps, 32 to 256
/// (so the cast below is exact; the launch checks block sizes anyway).
pub(crate) fn row_threads(c: usize) -> u32 {
    if c >= 1024 {
        256
    } else {
        (c.div_ceil(32) * 32).clamp(32, 256) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launches_within_the_limits_pass_unchanged() {
        let ok = Launch::flat(1 << 40).checked().unwrap();
        assert_eq!(ok, ((65_535 * 8, 1, 1), (THREADS, 1, 1)));
        let rows = Launch::rows(MAX_GRID_X, 256).checked().unwrap();
        assert_eq!(rows.0, (MAX_GRID_X as u32, 1, 1));
        assert_eq!(Launch::columns(100, 0).checked().unwrap().0, (4, 1, 1));
        assert!(Launch::columns(64, MAX_GRID_YZ).checked().is_ok());
    }

    #[test]
    fn oversized_grids_and_blocks_are_errors_not_wraps() {
        let e = Launch::rows(1 << 31, 256).checked().unwrap_err();
        assert!(e.contains("grid.x = 2147483648"), "{e}");
        let e = Launch::rows(1 << 32, 256).checked().unwrap_err();
        assert!(e.contains("grid.x"), "{e}");
        let e = Launch::columns(64, MAX_GRID_YZ + 1).checked().unwrap_err();
        assert!(e.contains("grid.y = 65536"), "{e}");
        let z = Launch {
            grid: (1, 1, 70_000),
            block: (32, 1, 1),
        };
        assert!(z.checked().unwrap_err().contains("grid.z"));
        assert!(Launch::rows(4, 1025)
            .checked()
            .unwrap_err()
            .contains("block"));
        let deep = Launch {
            grid: (1, 1, 1),
            block: (1, 1, 65),
        };
        assert!(deep.checked().is_err());
        let empty = Launch {
            grid: (1, 1, 1),
            block: (0, 1, 1),
        };
        assert!(empty.checked().is_err());
    }

    /// Whether `image` (a fatbin: ELF string tables and PTX text) defines kernel `symbol`.
    fn defines(image: &[u8], symbol: &str) -> bool {
        let elf = format!("\0{symbol}\0");
        let ptx = format!(".entry {symbol}(");
        [elf.as_bytes(), ptx.as_bytes()]
            .iter()
            .any(|pat| image.windows(pat.len()).any(|w| w == *pat))
    }

    #[test]
    fn every_kernel_is_defined_in_the_module_its_signature_names_and_only_there() {
        if !has_device_code() {
            eprintln!("skipped: this build holds no GPU code");
            return;
        }
        for k in KERNELS {
            let modules = embedded::MODULES.iter().map(|(m, _)| *m);
            assert!(
                modules.clone().any(|m| m == k.module),
                "no module {}",
                k.module
            );
            for &(module, image) in embedded::MODULES {
                let found = defines(image, k.symbol);
                if module == k.module {
                    assert!(found, "{} is not in kernels/{module}.cu's image", k.symbol);
                } else {
                    assert!(!found, "{} (of {}) is also in {module}", k.symbol, k.module);
                }
            }
        }
    }
}
