//! The library and device report of `simclr info --device cuda`: where each CUDA library was
//! looked for and found (or every path tried when it was not), the file and version of each
//! library this process loaded, and the GPU (name, compute capability, memory, driver). It is
//! the first thing the GPU validation runs; it fails (an error after the report) unless the
//! driver, cuBLAS, cuDNN and NCCL all load and `cuda:0` opens with our kernels. nvJPEG is
//! optional: listed with its path and version, or "not found" with what was tried.

use super::driver::{self, cu, libraries, loaded};
use super::error::{cuda_err, CudaCall};
use crate::Result;
use std::fmt::Write;

const GIB: f64 = (1u64 << 30) as f64;

/// Builds the report; `Err` carries the report too (the caller prints it before failing).
pub fn report() -> std::result::Result<String, String> {
    let mut r = String::new();
    let mode = driver::mode();
    let _ = writeln!(r, "CUDA report (mode {})", mode.name());
    if mode != driver::Mode::Real {
        // The emulated device loads no library; only its device line means anything.
        return match device_line(&mut r) {
            Ok(()) => Ok(r),
            Err(e) => Err(format!("{r}status: FAILED: {e}\n")),
        };
    }
    // Probing runs discovery and preloading first, then cudarc's loads.
    let available = super::is_available();
    let d = libraries::preload();
    let _ = writeln!(r, "folders searched, in order:");
    if d.folders.is_empty() {
        let _ = writeln!(r, "  (none exist)");
    }
    for (p, src) in &d.folders {
        let _ = writeln!(r, "  {}  [{src}]", p.display());
    }
    for n in &d.notes {
        let _ = writeln!(r, "  note: {n}");
    }
    let _ = writeln!(r, "preloaded by absolute path:");
    for f in &d.libraries {
        match &f.path {
            Some(p) => {
                let stub = f
                    .stub
                    .map(|s| format!(" (+ soname stub {s})"))
                    .unwrap_or_default();
                let _ = writeln!(r, "  {:<7} {}{stub}", f.name, p.display());
            }
            None => {
                let tried: Vec<String> = f.tried.iter().map(|p| p.display().to_string()).collect();
                let _ = writeln!(
                    r,
                    "  {:<7} not found; tried: {}; left to the system's search{}",
                    f.name,
                    if tried.is_empty() {
                        "(no folder to look in)".to_string()
                    } else {
                        tried.join(", ")
                    },
                    if f.optional { " (optional)" } else { "" }
                );
            }
        }
        for e in &f.errors {
            let _ = writeln!(r, "          dlopen failed: {e}");
        }
    }
    let _ = writeln!(
        r,
        "stubs in this build: {}",
        libraries::stubs()
            .iter()
            .map(|(s, n)| format!("{s} -> {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(r, "loaded in this process:");
    let mut missing = Vec::new();
    for l in loaded::libraries() {
        match (&l.path, &l.version) {
            (Some(p), v) => {
                let _ = writeln!(
                    r,
                    "  {:<7} {:<28} {}",
                    l.name,
                    v.as_deref().unwrap_or("(version unknown)"),
                    p.display()
                );
            }
            (None, _) if l.optional => {
                let _ = writeln!(
                    r,
                    "  {:<7} not found (optional; GPU JPEG decoding is off): {}",
                    l.name,
                    l.missing.as_deref().unwrap_or("not loaded")
                );
            }
            (None, _) => {
                let how = if l.name == "driver" {
                    "tried libcuda.so and libcuda.so.1 by name (ld.so.cache, LD_LIBRARY_PATH \
                     at process start)"
                } else {
                    "not in the folders above, nor found by the system's search"
                };
                let _ = writeln!(r, "  {:<7} MISSING: {how}", l.name);
                missing.push(l.name);
            }
        }
    }
    if !available {
        let _ = writeln!(r, "status: FAILED: {}", super::unavailable_reason());
        return Err(r);
    }
    if let Err(e) = device_line(&mut r) {
        let _ = writeln!(r, "status: FAILED: {e}");
        return Err(r);
    }
    if !missing.is_empty() {
        let _ = writeln!(r, "status: FAILED: not loaded: {}", missing.join(", "));
        return Err(r);
    }
    let _ = writeln!(r, "status: OK");
    Ok(r)
}

/// Opens `cuda:0` (context, stream, our kernels) and describes it.
fn device_line(r: &mut String) -> Result<()> {
    let g = super::gpu(0)?;
    let name = g.ctx.name().call("cuDeviceGetName")?;
    let (major, minor) = g
        .ctx
        .compute_capability()
        .call("cuDeviceGetAttribute(compute capability)")?;
    let total = g.ctx.total_mem().call("cuDeviceTotalMem")?;
    let (free, _) = cu::mem_get_info().call("cuMemGetInfo")?;
    let count = cu::device_count().call("cuDeviceGetCount")?;
    let _ = writeln!(
        r,
        "device cuda:0 of {count}: {name}, compute capability {major}.{minor}, {:.1} GiB total, \
         {:.1} GiB free; context, stream and kernels loaded",
        total as f64 / GIB,
        free as f64 / GIB
    );
    Ok(())
}

/// Prints the report; an error (after it) when CUDA cannot be used.
pub fn print_report() -> Result<()> {
    match report() {
        Ok(r) => {
            print!("{r}");
            Ok(())
        }
        Err(r) => {
            print!("{r}");
            Err(cuda_err(
                "the CUDA backend cannot run here (see the report above: status FAILED)",
            ))
        }
    }
}
