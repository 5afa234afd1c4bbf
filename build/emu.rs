//! The emulated device's build (feature `cuda-emu`, see emu/README.md): every `kernels/<m>.cu`
//! compiled by the host C++ compiler as C++17 over `emu/cuda_emu.h`, with GCC's kernel-address
//! instrumentation calling the runtime's checked-memory hooks, plus the runtime itself
//! (`emu/*.cpp`, not instrumented), into `$OUT_DIR/libsimclr_emu.a`; and
//! `$OUT_DIR/emu_modules.rs`, the table (module, [(kernel, thunk)]) the Rust side looks kernels
//! up in, one module at a time.
//!
//! Each module's code is wrapped in a namespace of its own (`emu_mod_<m>`), so same-named helpers
//! of two modules never merge at link time; its kernels keep their C names. A thunk
//! `emu_thunk_<kernel>(void** p)` unpacks each parameter by its parsed type (`p[i]` points at the
//! value, as cuLaunchKernel's params do) and calls the kernel.
//! `SIMCLR_EMU_KERNELS_DIR` (a copy of `kernels/`, e.g. with a planted fault) replaces the
//! kernel sources of the emulated build only; emu/tests/*.cu add test-only modules.

use super::kernel_signatures::{self as sig, CType, Kernel, Scalar};
use super::object_cache::ObjectCache;
use super::shared_rewrite;
use std::path::{Path, PathBuf};
use std::process::Command;

const INSTRUMENT: &[&str] = &[
    // Line tables: the memory checks name the source line of a faulty access. DWARF 4: in GCC
    // 12's DWARF 5 tables addr2line names the generated wrapper (mod_pool.cpp:41) for the
    // kernel source's line (pool.cu:41) in template instances (tests/emu_runtime.rs).
    "-g1",
    "-gdwarf-4",
    "-fsanitize=kernel-address",
    "-fsanitize-recover=kernel-address",
    // A GPU faults on an access not aligned to its type (the host does not): UBSan's check,
    // made from the types before any optimisation widens an access, reaches the runtime's
    // handler (emu/memory.cpp).
    "-fsanitize=alignment",
    "-fsanitize-recover=alignment",
    "--param",
    "asan-instrumentation-with-call-threshold=0",
    "--param",
    "asan-stack=0",
    "--param",
    "asan-globals=0",
];

/// Builds the emulated kernels and runtime; `kernels` are the signatures of `kernels_dir`.
pub fn build(manifest: &Path, out: &Path, cxx: &str, kernels_dir: &Path) -> Result<(), String> {
    println!("cargo:rerun-if-env-changed=SIMCLR_EMU_KERNELS_DIR");
    println!("cargo:rerun-if-env-changed=SIMCLR_EMU_KERNELS_FOR");
    let base_dir = kernels_dir.to_path_buf();
    let kernels_dir = match std::env::var_os("SIMCLR_EMU_KERNELS_DIR") {
        Some(d) => PathBuf::from(d),
        None => base_dir.clone(),
    };
    // A planted fault in a shared header (scripts/emu-planted-faults.sh) can be confined to the
    // modules its test runs: the others, and the runtime, compile from kernels/ and hit the
    // object cache instead of all being compiled again.
    let planted_only: Option<Vec<String>> = std::env::var("SIMCLR_EMU_KERNELS_FOR")
        .ok()
        .filter(|_| kernels_dir != base_dir)
        .map(|v| v.split(',').map(|m| m.trim().to_string()).collect());
    let emu = manifest.join("emu");
    let dir = out.join("emu");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for d in [&emu, &emu.join("include"), &emu.join("tests"), &kernels_dir] {
        println!("cargo:rerun-if-changed={}", d.display());
    }
    for entry in std::fs::read_dir(&kernels_dir).map_err(|e| e.to_string())? {
        println!(
            "cargo:rerun-if-changed={}",
            entry.map_err(|e| e.to_string())?.path().display()
        );
    }

    let mut kernels = sig::all_kernels(cxx, &kernels_dir, &dir.join("signature-pass"))?;
    // What is compiled: copies with every `__shared__` declaration rewritten (shared_rewrite.rs).
    let (compiled_kernels, compiled_tests) = (dir.join("kernels"), dir.join("tests"));
    shared_rewrite::rewrite_dir(&kernels_dir, &compiled_kernels)?;
    let compiled_base = match &planted_only {
        Some(_) => {
            let d = dir.join("kernels-base");
            shared_rewrite::rewrite_dir(&base_dir, &d)?;
            d
        }
        None => compiled_kernels.clone(),
    };
    let planted = |m: &str| {
        planted_only
            .as_ref()
            .is_none_or(|only| only.iter().any(|o| o == m))
    };
    let mut sources: Vec<(String, PathBuf)> = modules_of(&kernels, &compiled_kernels)
        .into_iter()
        .map(|(m, p)| match planted(&m) {
            true => (m, p),
            false => (m.clone(), compiled_base.join(format!("{m}.cu"))),
        })
        .collect();
    // Test-only modules (emu/tests/<m>.cu), named test_<m>.
    let tests = emu.join("tests");
    let mut test_files: Vec<PathBuf> = std::fs::read_dir(&tests)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    test_files.retain(|p| p.extension().and_then(|e| e.to_str()) == Some("cu"));
    test_files.sort();
    for src in test_files {
        println!("cargo:rerun-if-changed={}", src.display());
        let stem = src
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or("odd test kernel name")?;
        let module = format!("test_{stem}");
        let text = sig::preprocess(cxx, &src, &kernels_dir, &dir.join("signature-pass"))?;
        kernels.extend(sig::parse_module(&module, &text)?);
        sources.push((module, compiled_tests.join(format!("{stem}.cu"))));
    }
    shared_rewrite::rewrite_dir(&tests, &compiled_tests)?;

    // Compile: the runtime without instrumentation, the modules with it; a unit already in the
    // cache (same text, headers and flags) is not compiled again.
    // Two include sets differ only while a header fault is confined (`planted_only`): the
    // planted modules and the test modules see the planted headers, the rest kernels/' own.
    let include = vec![emu.join("include"), emu.clone(), compiled_kernels.clone()];
    let include_base = vec![emu.join("include"), emu.clone(), compiled_base.clone()];
    let cache = ObjectCache::new(dir.join("objects"), cxx, &include)?;
    let cache_base = ObjectCache::new(dir.join("objects"), cxx, &include_base)?;
    let mut jobs: Vec<Job> = Vec::new();
    let mut add = |src: PathBuf, flags: Vec<String>, texts: &[&[u8]], planted: bool| {
        let mut args: Vec<String> = BASE_FLAGS.iter().map(|s| s.to_string()).collect();
        args.extend(flags);
        let (cache, include) = match planted {
            true => (&cache, &include),
            false => (&cache_base, &include_base),
        };
        let (obj, hit) = cache.object(&args, texts);
        jobs.push(Job {
            src,
            include: include.clone(),
            args,
            obj,
            hit,
        });
    };
    for f in ["runtime", "memory", "fiber", "shared", "shared_vars"] {
        let src = emu.join(format!("{f}.cpp"));
        println!("cargo:rerun-if-changed={}", src.display());
        let text = std::fs::read(&src).map_err(|e| format!("{}: {e}", src.display()))?;
        add(src, Vec::new(), &[&text], false);
    }
    for (module, src) in &sources {
        // Outside a confined header fault's modules, kernels/' own copy of the source.
        let planted = module.starts_with("test_") || planted(module);
        let src = match planted {
            true => src.clone(),
            false => compiled_base.join(format!("{module}.cu")),
        };
        let wrapper = dir.join(format!("mod_{module}.cpp"));
        let body = wrapper_source(module, &src, &kernels)?;
        std::fs::write(&wrapper, &body).map_err(|e| e.to_string())?;
        let text = std::fs::read(&src).map_err(|e| format!("{}: {e}", src.display()))?;
        // The wrapper names the source's path; its text stands in the key instead.
        let wrapper_key = body.replace(&src.display().to_string(), module);
        let flags = INSTRUMENT
            .iter()
            .chain(contraction_flags())
            .map(|s| s.to_string())
            .collect();
        add(wrapper, flags, &[wrapper_key.as_bytes(), &text], planted);
    }
    let todo: Vec<&Job> = jobs.iter().filter(|j| !j.hit).collect();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let chunks: Vec<Vec<&Job>> = (0..threads)
            .map(|t| todo.iter().copied().skip(t).step_by(threads).collect())
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                s.spawn(move || {
                    for job in chunk {
                        compile(cxx, job)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("compile thread panicked".into()))
            })
            .collect()
    });
    for r in results {
        r?;
    }
    cache_base.prune();
    let lib = dir.join("libsimclr_emu.a");
    let _ = std::fs::remove_file(&lib);
    let status = Command::new("ar")
        .arg("crs")
        .arg(&lib)
        .args(jobs.iter().map(|j| &j.obj))
        .status()
        .map_err(|e| format!("running ar: {e}"))?;
    if !status.success() {
        return Err("ar failed on the emulated kernels".into());
    }
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static=simclr_emu");
    println!("cargo:rustc-link-lib=dylib=stdc++");
    std::fs::write(out.join("emu_modules.rs"), table(&sources, &kernels)).map_err(|e| e.to_string())
}

/// (module, source) of every module that has kernels, in name order.
fn modules_of(kernels: &[Kernel], dir: &Path) -> Vec<(String, PathBuf)> {
    let mut names: Vec<String> = kernels.iter().map(|k| k.module.clone()).collect();
    names.dedup();
    names
        .into_iter()
        .map(|m| {
            let p = dir.join(format!("{m}.cu"));
            (m, p)
        })
        .collect()
}

/// The translation unit of one module: its source inside `namespace emu_mod_<m>`, then a thunk
/// per kernel. The thunk reads the launch's parameter array, host memory the kernels' checks
/// would refuse (memory.cpp, `outside_device_memory`), so it is not instrumented; GCC does not
/// inline a function across differing sanitizer attributes, so the kernel itself still is.
fn wrapper_source(module: &str, src: &Path, kernels: &[Kernel]) -> Result<String, String> {
    let mut s = format!(
        "// Generated by build/emu.rs: kernels of {} for the emulated device.\n\
         #include \"cuda_emu.h\"\n#include <cuda_bf16.h>\nnamespace emu_mod_{module} {{\n\
         #include \"{}\"\n",
        src.display(),
        src.display()
    );
    for k in kernels.iter().filter(|k| k.module == module) {
        let args: Vec<String> = k
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| match &p.ty {
                CType::Value(_) | CType::Ptr { .. } => format!("*({}*)p[{i}]", p.ty.c_decl()),
            })
            .collect();
        s += &format!(
            "extern \"C\" __attribute__((no_sanitize_address)) void emu_thunk_{0}(void** p) \
             {{ (void)p; {0}({1}); }}\n",
            k.name,
            args.join(", ")
        );
    }
    s += "}\n";
    Ok(s)
}

/// One unit to compile: its source, its include folders, its other arguments and its object in
/// the cache, there already or not.
struct Job {
    src: PathBuf,
    include: Vec<PathBuf>,
    args: Vec<String>,
    obj: PathBuf,
    hit: bool,
}

/// The kernels' floating-point contraction, as nvcc's default `--fmad=true` does on a GPU:
/// `a * b + c` may become one fused multiply-add, rounded once, so a kernel's results differ
/// from the CPU reference (which never fuses) in their last bits, as they will on the GPU, and
/// a test that wants them bit-equal fails here too. Fused instructions need the host's FMA
/// (the build and the tests run on the same machine); without it GCC only contracts in name.
fn contraction_flags() -> &'static [&'static str] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        return &["-ffp-contract=fast", "-mfma"];
    }
    &["-ffp-contract=fast"]
}

/// Every unit's flags. The library links into executables: thread-locals (emu_cur, shared
/// memory) need no __tls_get_addr call per access.
const BASE_FLAGS: &[&str] = &[
    "-std=c++17",
    "-O2",
    "-fPIC",
    "-fno-strict-aliasing",
    "-c",
    "-ftls-model=initial-exec",
];

/// Compiles `job` into a temporary file renamed to its object, so an interrupted compiler
/// never leaves a partial object for a later build to take as a hit.
fn compile(cxx: &str, job: &Job) -> Result<(), String> {
    let tmp = job
        .obj
        .with_extension(format!("{}.tmp", std::process::id()));
    let mut cmd = Command::new(cxx);
    for i in &job.include {
        cmd.arg("-I").arg(i);
    }
    let out = cmd
        .args(&job.args)
        .arg("-o")
        .arg(&tmp)
        .arg(&job.src)
        .output()
        .map_err(|e| format!("running the host C++ compiler `{cxx}`: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "the emulated build failed on {}:\n{}",
            job.src.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::rename(&tmp, &job.obj).map_err(|e| format!("{}: {e}", job.obj.display()))
}

/// `$OUT_DIR/emu_modules.rs`: the thunks' declarations and the per-module table.
fn table(sources: &[(String, PathBuf)], kernels: &[Kernel]) -> String {
    let mut s = String::from(
        "// Generated by build/emu.rs: every emulated module and its kernels' launch thunks.\n\
         pub type Thunk = unsafe extern \"C\" fn(*mut *mut std::ffi::c_void);\n\
         /// A kernel: its name, launch thunk, the size in bytes of each parameter's value and the\n\
         /// largest block its __launch_bounds__ allows (0: none given).\n\
         pub type Entry = (&'static str, Thunk, &'static [u8], u32);\n\
         unsafe extern \"C\" {\n",
    );
    for k in kernels {
        s += &format!(
            "    fn emu_thunk_{}(p: *mut *mut std::ffi::c_void);\n",
            k.name
        );
    }
    s += "}\n/// (module, [(kernel, thunk, bytes of each parameter, most threads per block)]), modules\n\
          /// in name order.\n\
          pub static MODULES: &[(&str, &[Entry])] = &[\n";
    for (m, _) in sources {
        s += &format!("    ({m:?}, &[\n");
        for k in kernels.iter().filter(|k| &k.module == m) {
            let sizes: Vec<String> = k
                .params
                .iter()
                .map(|p| param_bytes(&p.ty).to_string())
                .collect();
            s += &format!(
                "        ({:?}, emu_thunk_{} as Thunk, &[{}], {}),\n",
                k.name,
                k.name,
                sizes.join(", "),
                k.max_threads.unwrap_or(0)
            );
        }
        s += "    ]),\n";
    }
    s += "];\n";
    s
}

/// The size of a parameter's value as the launch passes it (what a recorded launch copies).
fn param_bytes(t: &CType) -> usize {
    match t {
        CType::Ptr { .. } => 8,
        CType::Value(s) => match s {
            Scalar::U8 => 1,
            Scalar::Bf16 => 2,
            Scalar::F32 | Scalar::I32 | Scalar::U32 => 4,
            Scalar::I64 | Scalar::U64 | Scalar::Struct(_) => 8,
        },
    }
}
