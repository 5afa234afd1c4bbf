//! Reads the parameter lists of every `extern "C" __global__` kernel in `kernels/*.cu`, after the
//! C preprocessor has expanded the per-dtype macros (`FOR_DTYPES(BN_KERNELS)` and the like).
//! One source of truth for the typed Rust launches and the emulated device's launch thunks.
//!
//! Only the types our kernels use are understood; any other type stops the build with a
//! message naming the kernel and the parameter.

use std::path::Path;
use std::process::Command;

/// A scalar type a kernel parameter holds or points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scalar {
    F32,
    Bf16,
    I32,
    U32,
    I64,
    U64,
    U8,
    /// A struct declared in the kernel sources (passed by pointer only).
    Struct(String),
}

impl Scalar {
    /// The C spelling used in the kernels (after `typedef`s of `common.cuh`).
    pub fn c_name(&self) -> &str {
        match self {
            Scalar::F32 => "float",
            Scalar::Bf16 => "bf16",
            Scalar::I32 => "int",
            Scalar::U32 => "unsigned",
            Scalar::I64 => "i64",
            Scalar::U64 => "unsigned long long",
            Scalar::U8 => "uint8_t",
            Scalar::Struct(s) => s,
        }
    }
}

/// A kernel parameter's type: a value, or a device pointer (const or not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CType {
    Value(Scalar),
    Ptr { pointee: Scalar, mutable: bool },
}

impl CType {
    /// How the type is spelled in a C declaration, e.g. `const float*`.
    pub fn c_decl(&self) -> String {
        match self {
            CType::Value(s) => s.c_name().to_string(),
            CType::Ptr {
                pointee,
                mutable: true,
            } => format!("{}*", pointee.c_name()),
            CType::Ptr {
                pointee,
                mutable: false,
            } => format!("const {}*", pointee.c_name()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub ty: CType,
}

/// One kernel: its module (`kernels/<module>.cu`), symbol and parameters in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    pub module: String,
    pub name: String,
    pub params: Vec<Param>,
    /// The largest block its `__launch_bounds__` allows (a GPU refuses a larger launch).
    pub max_threads: Option<u32>,
}

/// Runs the host C++ preprocessor over `src`. `<cuda_bf16.h>` resolves to an empty stub in
/// `stub_dir`, so no CUDA toolkit is needed; `__global__` and friends stay as plain tokens.
pub fn preprocess(
    cxx: &str,
    src: &Path,
    kernels_dir: &Path,
    stub_dir: &Path,
) -> Result<String, String> {
    std::fs::create_dir_all(stub_dir).map_err(|e| format!("{}: {e}", stub_dir.display()))?;
    let stub = stub_dir.join("cuda_bf16.h");
    if !stub.is_file() {
        std::fs::write(
            &stub,
            "// empty: the signature pass needs no CUDA headers\n",
        )
        .map_err(|e| format!("{}: {e}", stub.display()))?;
    }
    let out = Command::new(cxx)
        .args(["-E", "-P", "-x", "c++", "-D__SIMCLR_SIGNATURE_PASS__"])
        .arg("-I")
        .arg(stub_dir)
        .arg("-I")
        .arg(kernels_dir)
        .arg(src)
        .output()
        .map_err(|e| format!("running the C preprocessor `{cxx}`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the C preprocessor failed on {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout)
        .map_err(|_| format!("{}: preprocessed text is not UTF-8", src.display()))
}

/// The kernels declared in one preprocessed module.
pub fn parse_module(module: &str, text: &str) -> Result<Vec<Kernel>, String> {
    const HEAD: &str = "extern \"C\" __global__ void";
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut kernels = Vec::new();
    let mut rest = flat.as_str();
    while let Some(at) = rest.find(HEAD) {
        rest = rest[at + HEAD.len()..].trim_start();
        let mut max_threads = None;
        if let Some(after) = rest.strip_prefix("__launch_bounds__") {
            let close = after
                .find(')')
                .ok_or_else(|| format!("kernels/{module}.cu: unclosed __launch_bounds__"))?;
            let args = after[..close].trim().trim_start_matches('(');
            let first = args.split(',').next().unwrap_or_default().trim();
            max_threads = Some(first.parse::<u32>().map_err(|_| {
                format!(
                    "kernels/{module}.cu: __launch_bounds__({args}): its first argument must be a \
                     number of threads after preprocessing"
                )
            })?);
            rest = after[close + 1..].trim_start();
        }
        let open = rest
            .find('(')
            .ok_or_else(|| format!("kernels/{module}.cu: a kernel without a parameter list"))?;
        let name = rest[..open].trim().to_string();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("kernels/{module}.cu: odd kernel name {name:?}"));
        }
        let close = rest[open..]
            .find(')')
            .ok_or_else(|| format!("kernels/{module}.cu: {name}: unclosed parameter list"))?
            + open;
        let list = rest[open + 1..close].trim();
        let mut params = Vec::new();
        if !list.is_empty() && list != "void" {
            for p in list.split(',') {
                params.push(parse_param(p.trim()).map_err(|e| {
                    format!(
                        "kernels/{module}.cu: kernel {name}: parameter `{}`: {e}",
                        p.trim()
                    )
                })?);
            }
        }
        kernels.push(Kernel {
            module: module.to_string(),
            name,
            params,
            max_threads,
        });
        rest = &rest[close..];
    }
    Ok(kernels)
}

fn scalar(words: &[&str]) -> Result<Scalar, String> {
    Ok(match words.join(" ").as_str() {
        "float" => Scalar::F32,
        "bf16" | "__nv_bfloat16" => Scalar::Bf16,
        "int" | "int32_t" => Scalar::I32,
        "unsigned" | "unsigned int" | "uint32_t" => Scalar::U32,
        "i64" | "long long" | "int64_t" => Scalar::I64,
        "unsigned long long" | "uint64_t" => Scalar::U64,
        "uint8_t" | "unsigned char" => Scalar::U8,
        s if s.len() > 1
            && s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Scalar::Struct(s.to_string())
        }
        other => return Err(format!("type `{other}` is not one the kernels may take")),
    })
}

fn parse_param(p: &str) -> Result<Param, String> {
    // Separate `*` from the words around it: `const float* x` → [const, float, *, x].
    let spaced = p.replace('*', " * ");
    let mut words: Vec<&str> = spaced.split_whitespace().collect();
    let name = words.pop().ok_or("empty parameter")?.to_string();
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("odd parameter name {name:?}"));
    }
    let stars = words.iter().filter(|w| **w == "*").count();
    let is_const = words.first() == Some(&"const");
    let core: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| *w != "*" && *w != "const" && *w != "__restrict__")
        .collect();
    let s = scalar(&core)?;
    match stars {
        0 if matches!(s, Scalar::Struct(_)) => Err("structs are passed by pointer only".into()),
        0 => Ok(Param {
            name,
            ty: CType::Value(s),
        }),
        1 => Ok(Param {
            name,
            ty: CType::Ptr {
                pointee: s,
                mutable: !is_const,
            },
        }),
        _ => Err("pointers to pointers are not supported".into()),
    }
}

/// Every kernel of every `kernels/*.cu`, modules in name order.
pub fn all_kernels(cxx: &str, kernels_dir: &Path, stub_dir: &Path) -> Result<Vec<Kernel>, String> {
    let mut sources: Vec<_> = std::fs::read_dir(kernels_dir)
        .map_err(|e| format!("{}: {e}", kernels_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("cu"))
        .collect();
    sources.sort();
    let mut all = Vec::new();
    for src in &sources {
        let module = src
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| format!("odd kernel file name {}", src.display()))?;
        let text = preprocess(cxx, src, kernels_dir, stub_dir)?;
        all.extend(parse_module(module, &text)?);
    }
    let mut seen = std::collections::HashMap::new();
    for k in &all {
        if let Some(other) = seen.insert(k.name.clone(), k.module.clone()) {
            return Err(format!(
                "kernel {} is defined in kernels/{}.cu and kernels/{}.cu; symbols must be unique",
                k.name, other, k.module
            ));
        }
    }
    Ok(all)
}

/// The host C++ compiler: `$CXX`, else `c++`.
pub fn host_cxx() -> String {
    println!("cargo:rerun-if-env-changed=CXX");
    std::env::var("CXX").unwrap_or_else(|_| "c++".to_string())
}
