//! Build-time half of the CUDA library preloading (src/cuda/driver/libraries.rs): tiny shared
//! libraries ("soname stubs") with no code, whose DT_SONAME is a name cudarc asks `dlopen` for
//! and whose DT_NEEDED is the soname the PyPI wheels ship. Loaded after the real library, a stub
//! makes cudarc's `dlopen("libnccl.so")` return the already-loaded stub, and `dlsym` on it
//! searches its dependency, the real `libnccl.so.2` (cudarc never asks for `.so.2`).
//!
//! Writes `$OUT_DIR/soname_stubs.rs`: `STUBS: &[(stub soname, needed soname, ELF bytes)]`. Built
//! with the host C compiler (`$CC`, else `cc`); without one the list is empty and the library
//! report says so (a build warning too).

use std::path::Path;
use std::process::Command;

/// (stub soname, the real library's soname). cuBLAS and cuDNN are in cudarc's candidate list
/// (`.so.13`, `.so.9`), but after `libcublas.so` / `libcudnn.so`, which could find another
/// install first; their stubs make the first candidate resolve to the preloaded library.
const STUBS: [(&str, &str); 3] = [
    ("libnccl.so", "libnccl.so.2"),
    ("libcublas.so", "libcublas.so.13"),
    ("libcudnn.so", "libcudnn.so.9"),
];

pub fn build(out: &Path) {
    println!("cargo:rerun-if-env-changed=CC");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let dir = out.join("soname-stubs");
    let mut rs = String::from(
        "/// (stub soname, needed soname, ELF bytes), written by build.rs (build/soname_stubs.rs).\n\
         pub static STUBS: &[(&str, &str, &[u8])] = &[\n",
    );
    for (stub, needed) in STUBS {
        match make_stub(&cc, &dir, stub, needed) {
            Ok(path) => {
                rs += &format!(
                    "    ({stub:?}, {needed:?}, include_bytes!({:?})),\n",
                    path.display().to_string()
                )
            }
            Err(e) => println!("cargo:warning=no soname stub {stub} -> {needed}: {e}"),
        }
    }
    rs += "];\n";
    if let Err(e) = std::fs::write(out.join("soname_stubs.rs"), rs) {
        panic!("writing {}: {e}", out.join("soname_stubs.rs").display());
    }
}

/// Links an empty library named `needed` (only so the linker records it), then the stub.
fn make_stub(cc: &str, dir: &Path, stub: &str, needed: &str) -> Result<std::path::PathBuf, String> {
    let work = dir.join(stub);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let empty = work.join("empty.c");
    std::fs::write(&empty, "/* no code: only the dynamic section matters */\n")
        .map_err(|e| format!("{}: {e}", empty.display()))?;
    let link = |soname: &str, dest: &Path, extra: &[&str]| -> Result<(), String> {
        let o = Command::new(cc)
            .args(["-shared", "-fPIC", "-nostdlib"])
            .arg(format!("-Wl,-soname,{soname}"))
            .arg("-o")
            .arg(dest)
            .arg(&empty)
            .args(extra)
            .output()
            .map_err(|e| format!("running {cc}: {e}"))?;
        if o.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{cc} failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
    };
    link(needed, &work.join(needed), &[])?;
    let dest = work.join(stub);
    let search = format!("-L{}", work.display());
    let lib = format!("-l:{needed}");
    link(stub, &dest, &["-Wl,--no-as-needed", &search, &lib])?;
    Ok(dest)
}
