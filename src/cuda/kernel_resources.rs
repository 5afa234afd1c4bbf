//! What ptxas reports for each of our kernels on sm_90 (H100, H200), read at build time from the
//! compile that makes the fatbins (build/kernel_resources.rs), and the occupancy it allows: the
//! numbers to read before profiling a kernel. `simclr info --kernels` prints them;
//! tests/kernel_resources.rs holds every kernel to no spills and no local memory.

/// One kernel's sm_90 resources as ptxas reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelResources {
    /// `kernels/<module>.cu`.
    pub module: &'static str,
    pub kernel: &'static str,
    /// Registers per thread.
    pub registers: u32,
    /// Named barriers (`__syncthreads` uses one).
    pub barriers: u32,
    /// Static shared memory per block.
    pub shared_bytes: u32,
    /// Local memory per thread (arrays indexed at run time, or spills).
    pub stack_bytes: u32,
    pub spill_store_bytes: u32,
    pub spill_load_bytes: u32,
}

include!(concat!(env!("OUT_DIR"), "/kernel_resources.rs"));

/// sm_90's per-SM limits and allocation units (CUDA C++ Programming Guide, compute capability
/// 9.0, and the occupancy calculator's granularities).
pub mod sm90 {
    pub const REGISTERS: u32 = 65_536;
    /// Registers are given to a warp in units of 256.
    pub const REGISTER_UNIT: u32 = 256;
    pub const MAX_WARPS: u32 = 64;
    pub const MAX_BLOCKS: u32 = 32;
    /// 228 KiB of shared memory per SM, of which 1 KiB is reserved for every resident block.
    pub const SHARED_BYTES: u32 = 233_472;
    pub const SHARED_RESERVED_PER_BLOCK: u32 = 1_024;
    pub const SHARED_UNIT: u32 = 128;
    pub const WARP: u32 = 32;
}

/// How many blocks of one kernel an SM holds at once, and what stops it holding more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Occupancy {
    pub blocks: u32,
    /// Resident warps (of sm90::MAX_WARPS).
    pub warps: u32,
    /// "warps", "blocks", "registers" or "shared memory".
    pub limit: &'static str,
}

impl KernelResources {
    /// Resident blocks and warps per SM at `threads` per block (1..=1024).
    pub fn occupancy(&self, threads: u32) -> Occupancy {
        use sm90::*;
        let warps = threads.div_ceil(WARP).max(1);
        let per_warp = (self.registers * WARP).div_ceil(REGISTER_UNIT) * REGISTER_UNIT;
        let shared =
            (self.shared_bytes + SHARED_RESERVED_PER_BLOCK).div_ceil(SHARED_UNIT) * SHARED_UNIT;
        let limits = [
            (MAX_WARPS / warps, "warps"),
            (MAX_BLOCKS, "blocks"),
            (
                REGISTERS.checked_div(per_warp).unwrap_or(u32::MAX) / warps,
                "registers",
            ),
            (SHARED_BYTES / shared, "shared memory"),
        ];
        let (blocks, limit) = limits
            .into_iter()
            .min_by_key(|l| l.0)
            .unwrap_or((0, "warps"));
        Occupancy {
            blocks,
            warps: blocks * warps,
            limit,
        }
    }
}

/// The entry for `kernel`, if it is one of ours.
pub fn of(kernel: &str) -> Option<&'static KernelResources> {
    KERNEL_RESOURCES.iter().find(|r| r.kernel == kernel)
}
