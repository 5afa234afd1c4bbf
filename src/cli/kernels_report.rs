//! `simclr info --kernels`: every GPU kernel's sm_90 resources (src/cuda/kernel_resources.rs)
//! and the occupancy they allow, one line each.

use crate::Result;

/// The block size the occupancy column assumes: the largest our launchers use.
#[cfg(feature = "cuda")]
const THREADS: u32 = 256;

#[cfg(feature = "cuda")]
pub fn run() -> Result<()> {
    use crate::cuda::kernel_resources::{sm90, KERNEL_RESOURCES};
    println!(
        "{:<13} {:<38} {:>4} {:>6} {:>5} {:>11} {:>6} {:>5}  limit",
        "module", "kernel", "regs", "smem", "local", "spill st/ld", "blocks", "warps"
    );
    for r in KERNEL_RESOURCES {
        let o = r.occupancy(THREADS);
        println!(
            "{:<13} {:<38} {:>4} {:>6} {:>5} {:>11} {:>6} {:>5}  {}",
            r.module,
            r.kernel,
            r.registers,
            r.shared_bytes,
            r.stack_bytes,
            format!("{}/{}", r.spill_store_bytes, r.spill_load_bytes),
            o.blocks,
            o.warps,
            o.limit
        );
    }
    println!(
        "{} kernels; sm_90 (H100, H200), as ptxas reported at build time. regs: per thread; \
         smem: static shared bytes per block; local and spills: bytes per thread; blocks and \
         warps: resident per SM at {THREADS} threads per block (of {} warps), and what limits them.",
        KERNEL_RESOURCES.len(),
        sm90::MAX_WARPS
    );
    Ok(())
}

#[cfg(not(feature = "cuda"))]
pub fn run() -> Result<()> {
    Err(crate::Error::Config(
        "`simclr info --kernels`: this simclr was built without the `cuda` feature, so it holds \
         no GPU kernels to report; build it with `cargo build --release --features cuda`"
            .into(),
    ))
}
