//! With the `cuda` feature, compiles every `kernels/*.cu` with nvcc into a fatbin holding
//! compute_80 PTX (loads on any sm_80+ GPU, JIT-compiled by the driver) and sm_90 SASS (native on
//! H100), and writes `$OUT_DIR/kernels.rs`, which embeds them with `include_bytes!`. Also builds
//! `kernels/nvtx_shim.c` (the profiler's NVTX ranges, src/profile/nvtx.rs) into a static library
//! against the header-only NVTX v3 found next to nvcc.
//! From the kernels' parameter lists (build/kernel_signatures.rs) it also writes
//! `$OUT_DIR/kernel_signatures.txt` and the typed launchers `$OUT_DIR/kernel_launchers.rs`
//! (build/typed_launch.rs, included by src/cuda/kernels.rs), and from ptxas's report on the
//! same compile, every kernel's sm_90 registers, shared and local memory and spills
//! (build/kernel_resources.rs, `$OUT_DIR/kernel_resources.rs`).
//! With `cuda-emu`, also compiles the same kernels for the host, instrumented, with the emulated
//! device's runtime (build/emu.rs). Without the features it does nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "build/emu.rs"]
mod emu;
#[path = "build/kernel_resources.rs"]
mod kernel_resources;
#[path = "build/kernel_signatures.rs"]
#[allow(dead_code)]
mod kernel_signatures;
#[path = "build/object_cache.rs"]
mod object_cache;
#[path = "build/shared_rewrite.rs"]
mod shared_rewrite;
#[path = "build/soname_stubs.rs"]
mod soname_stubs;
#[path = "build/typed_launch.rs"]
#[allow(dead_code)]
mod typed_launch;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    println!("cargo:rerun-if-changed=build");
    if let Some(out) = std::env::var_os("OUT_DIR") {
        soname_stubs::build(Path::new(&out));
    }
    if let Err(e) = build_kernels() {
        // A panic in a build script prints its message as the build error.
        panic!("{e}");
    }
}

/// `$NVCC`, then `$CUDA_HOME/bin/nvcc`, then `nvcc` on `PATH`.
fn find_nvcc() -> Result<PathBuf, String> {
    println!("cargo:rerun-if-env-changed=NVCC");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    if let Some(p) = std::env::var_os("NVCC") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(format!(
            "$NVCC is set to {}, which is not a file",
            p.display()
        ));
    }
    if let Some(home) = std::env::var_os("CUDA_HOME") {
        let p = Path::new(&home).join("bin").join("nvcc");
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("nvcc");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(
        "the `cuda` feature needs nvcc to compile kernels/*.cu, and none was found: \
         not in $NVCC, not in $CUDA_HOME/bin, not on $PATH. Install one from PyPI with \
         `export NVCC=$(bash scripts/install-cuda-compiler.sh | tail -n1)`"
            .to_string(),
    )
}

fn build_kernels() -> Result<(), String> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let dir = manifest.join("kernels");
    println!("cargo:rerun-if-changed={}", dir.display());

    let mut sources = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("cu") => sources.push(path),
            Some("cuh") => println!("cargo:rerun-if-changed={}", path.display()),
            _ => {}
        }
    }
    sources.sort();
    for s in &sources {
        println!("cargo:rerun-if-changed={}", s.display());
    }
    // Every kernel's parameter list, read once from the sources (typed launches, emulation).
    let kernels = kernel_signatures::all_kernels(
        &kernel_signatures::host_cxx(),
        &dir,
        &out.join("signature-pass"),
    )?;
    let listing: String = kernels
        .iter()
        .map(|k| {
            let params: Vec<String> = k
                .params
                .iter()
                .map(|p| format!("{} {}", p.ty.c_decl(), p.name))
                .collect();
            format!("{}::{}({})\n", k.module, k.name, params.join(", "))
        })
        .collect();
    std::fs::write(out.join("kernel_signatures.txt"), listing).map_err(|e| e.to_string())?;
    // One typed launcher per kernel family (src/cuda/kernels.rs includes them).
    let launchers = typed_launch::generate(&kernels)?;
    std::fs::write(out.join("kernel_launchers.rs"), launchers).map_err(|e| e.to_string())?;
    if std::env::var_os("CARGO_FEATURE_CUDA_EMU").is_some() {
        emu::build(&manifest, &out, &kernel_signatures::host_cxx(), &dir)?;
    }

    let nvcc = find_nvcc()?;
    build_nvtx_shim(&nvcc, &manifest.join("kernels").join("nvtx_shim.c"), &out)?;

    // nvcc is slow and single-threaded: one thread per kernel file.
    let results: Vec<Result<(String, PathBuf), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter()
            .map(|src| scope.spawn(|| compile(&nvcc, &dir, src, &out)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("nvcc thread panicked".into()))
            })
            .collect()
    });

    let mut rs = String::from(
        "/// (family, fatbin) of every kernels/<family>.cu, written by build.rs.\n\
         pub static MODULES: &[(&str, &[u8])] = &[\n",
    );
    for r in results {
        let (name, fatbin) = r?;
        rs += &format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            fatbin.display().to_string()
        );
    }
    rs += "];\n";
    std::fs::write(out.join("kernels.rs"), rs).map_err(|e| e.to_string())?;
    write_resources(&kernels, &out)
}

/// `$OUT_DIR/kernel_resources.rs` from each module's saved ptxas report; every kernel of the
/// sources must be in it, and nothing else.
fn write_resources(kernels: &[kernel_signatures::Kernel], out: &Path) -> Result<(), String> {
    let mut table = Vec::new();
    let mut modules: Vec<&str> = kernels.iter().map(|k| k.module.as_str()).collect();
    modules.sort();
    modules.dedup();
    for module in modules {
        let report = std::fs::read_to_string(ptxas_report(out, module))
            .map_err(|e| format!("ptxas report of {module}.cu: {e}"))?;
        table.extend(kernel_resources::parse(module, NATIVE_ARCH, &report)?);
    }
    let mut reported: Vec<&str> = table.iter().map(|r| r.kernel.as_str()).collect();
    let mut declared: Vec<&str> = kernels.iter().map(|k| k.name.as_str()).collect();
    reported.sort();
    declared.sort();
    if reported != declared {
        return Err(format!(
            "ptxas reported resources for the kernels {reported:?}, but the sources declare \
             {declared:?}"
        ));
    }
    std::fs::write(
        out.join("kernel_resources.rs"),
        kernel_resources::render(&table),
    )
    .map_err(|e| e.to_string())
}

/// The architecture the fatbins hold machine code for (the rest is PTX).
const NATIVE_ARCH: &str = "sm_90";

/// Where ptxas's report of one module's compile is kept (beside its fatbin, reused with it).
fn ptxas_report(out: &Path, module: &str) -> PathBuf {
    out.join(format!("{module}.ptxas.txt"))
}

fn compile(
    nvcc: &Path,
    include: &Path,
    src: &Path,
    out: &Path,
) -> Result<(String, PathBuf), String> {
    let name = src
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| format!("odd kernel file name {}", src.display()))?
        .to_string();
    let fatbin = out.join(format!("{name}.fatbin"));
    let report = ptxas_report(out, &name);
    if fresh(&fatbin, include, src) && report.is_file() {
        return Ok((name, fatbin));
    }
    let output = Command::new(nvcc)
        .args([
            "-fatbin",
            "-O3",
            "-std=c++17",
            "-lineinfo",
            "--resource-usage",
        ])
        .args(["-gencode", "arch=compute_80,code=compute_80"])
        .args(["-gencode", "arch=compute_90,code=sm_90"])
        .arg("-I")
        .arg(include)
        .arg("-o")
        .arg(&fatbin)
        .arg(src)
        .output()
        .map_err(|e| format!("running {}: {e}", nvcc.display()))?;
    if !output.status.success() {
        return Err(format!(
            "nvcc failed on {}:\n{}{}",
            src.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut text = output.stdout;
    text.extend_from_slice(&output.stderr);
    std::fs::write(&report, text).map_err(|e| format!("{}: {e}", report.display()))?;
    Ok((name, fatbin))
}

/// Whether `fatbin` is newer than `src`, every header of `include` and nvcc's flags (this
/// file): build.rs reruns whenever any watched file changes (the emulated build's sources
/// too), and nvcc need not run again for kernels that did not change.
fn fresh(fatbin: &Path, include: &Path, src: &Path) -> bool {
    let manifest = include.parent().unwrap_or(include);
    let mut inputs = vec![src.to_path_buf(), manifest.join("build.rs")];
    if let Ok(rd) = std::fs::read_dir(include) {
        inputs.extend(
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("cuh")),
        );
    }
    newer_than_all(fatbin, &inputs)
}

/// Whether `out` exists and is newer than every one of `inputs` (all of which exist).
fn newer_than_all(out: &Path, inputs: &[impl AsRef<Path>]) -> bool {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = mtime(out) else {
        return false;
    };
    inputs
        .iter()
        .all(|p| mtime(p.as_ref()).is_some_and(|t| t < built))
}

/// The directory holding `nvtx3/nvToolsExt.h`: `include` beside nvcc's `bin` (a CUDA toolkit, or
/// scripts/install-cuda-compiler.sh's nvidia-nvtx wheel), else `$CUDA_HOME/include`.
fn find_nvtx_include(nvcc: &Path) -> Result<PathBuf, String> {
    let real = std::fs::canonicalize(nvcc).unwrap_or_else(|_| nvcc.to_path_buf());
    let mut candidates: Vec<PathBuf> = real
        .parent()
        .and_then(Path::parent)
        .map(|root| root.join("include"))
        .into_iter()
        .collect();
    if let Some(home) = std::env::var_os("CUDA_HOME") {
        candidates.push(Path::new(&home).join("include"));
    }
    for dir in &candidates {
        if dir.join("nvtx3").join("nvToolsExt.h").is_file() {
            return Ok(dir.clone());
        }
    }
    Err(format!(
        "the `cuda` feature needs the NVTX v3 headers (nvtx3/nvToolsExt.h) for the profiler's \
         ranges, and none were found in {:?}. Re-run `bash scripts/install-cuda-compiler.sh` \
         (it installs the pinned nvidia-nvtx wheel beside nvcc) or point $CUDA_HOME at a \
         toolkit that has them",
        candidates
    ))
}

/// Compiles the NVTX shim (plain C, nvcc hands it to the host compiler) into
/// `$OUT_DIR/libsimclr_nvtx.a` and links it (NVTX loads a profiler with dlopen). Also builds the
/// stand-in profiler tests/profile_nvtx.rs injects, `$SIMCLR_NVTX_CHECK_TOOL` at compile time.
fn build_nvtx_shim(nvcc: &Path, src: &Path, out: &Path) -> Result<(), String> {
    let include = find_nvtx_include(nvcc)?;
    let lib = out.join("libsimclr_nvtx.a");
    host_compile(nvcc, &include, src, "-lib", &lib)?;
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=simclr_nvtx");
    println!("cargo:rustc-link-lib=dylib=dl");

    let tool_src = src
        .parent()
        .and_then(Path::parent)
        .map(|root| root.join("tests").join("nvtx").join("check_tool.c"))
        .ok_or("odd manifest layout")?;
    let tool = out.join("libnvtx_check_tool.so");
    host_compile(nvcc, &include, &tool_src, "-shared", &tool)?;
    println!("cargo:rustc-env=SIMCLR_NVTX_CHECK_TOOL={}", tool.display());
    Ok(())
}

/// One C file through nvcc to the host compiler, position-independent, into `kind` ("-lib" for a
/// static library, "-shared" for a shared one).
fn host_compile(
    nvcc: &Path,
    include: &Path,
    src: &Path,
    kind: &str,
    dest: &Path,
) -> Result<(), String> {
    println!("cargo:rerun-if-changed={}", src.display());
    // A build-script run recompiled both files each time (about 1 s of each planted kernel
    // fault's rebuild, scripts/emu-planted-faults.sh): skipped while `dest` is newer than its
    // source, the flags here and the compiler.
    let build_rs =
        Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join("build.rs");
    if newer_than_all(dest, &[src, build_rs.as_path(), nvcc]) {
        return Ok(());
    }
    let output = Command::new(nvcc)
        .args([kind, "-O2", "-Xcompiler", "-fPIC"])
        .arg("-I")
        .arg(include)
        .arg("-o")
        .arg(dest)
        .arg(src)
        .output()
        .map_err(|e| format!("running {}: {e}", nvcc.display()))?;
    if !output.status.success() {
        return Err(format!(
            "nvcc failed on {}:\n{}{}",
            src.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}
