//! Generates `$OUT_DIR/kernel_launchers.rs`: one typed Rust launcher per kernel family, from the
//! parameter lists `kernel_signatures.rs` read out of `kernels/*.cu`.
//!
//! Why generated rather than hand-declared and verified: the `.cu` parameter list is the single
//! source of truth, so a Rust declaration cannot drift from it and there is nothing to keep in
//! step by hand; a kernel whose list changes changes its launcher, and every Rust call that no
//! longer fits stops compiling.
//!
//! Conventions of the generated code:
//! - A family is a pair `<op>_f32` / `<op>_bf16` of one module whose lists are identical except
//!   that `const float*`/`float*` in the f32 kernel is `const bf16*`/`bf16*` in the bf16 one at
//!   the same places: those places become `T` and the launcher is `<op><T: KernelDtype>`. Kernel
//!   ids of a family are consecutive, f32 first (`id + T::INDEX`). Every other kernel gets a
//!   plain launcher under its full symbol.
//! - `const P*` → `DevPtr<P>`, `P*` → `DevPtrMut<P>`, values keep their exact Rust type
//!   (`int` → `i32`, `i64` → `i64`, `float` → `f32`, `unsigned` → `u32`); a struct `S*` points at
//!   an opaque Rust type `S`.
//! - Each argument is copied into a local of its exact type and passed as one pointer per
//!   argument, in order (the `cuLaunchKernel` ABI the emulated device also reads).

use super::kernel_signatures::{CType, Kernel, Scalar};
use std::fmt::Write;

/// The storage dtypes of a family, in kernel-id order (must match `KernelDtype::INDEX`).
const DTYPES: [(&str, Scalar); 2] = [("f32", Scalar::F32), ("bf16", Scalar::Bf16)];

/// Parameters a launcher already takes for itself.
const RESERVED: [&str; 3] = ["gpu", "cfg", "params"];

/// One launcher: a family (generic over the dtype) or a single kernel.
#[derive(Debug, PartialEq)]
pub struct Launcher<'a> {
    /// The Rust function name: the op for a family, the symbol for a single kernel.
    pub name: String,
    /// The kernels it launches (one, or one per dtype in `DTYPES` order).
    pub kernels: Vec<&'a Kernel>,
    /// Per parameter: whether its pointee is the family's `T`.
    pub generic: Vec<bool>,
}

/// Groups kernels into launchers, in source order (modules by name, kernels as declared).
pub fn launchers(kernels: &[Kernel]) -> Result<Vec<Launcher<'_>>, String> {
    let mut out = Vec::new();
    let mut taken = vec![false; kernels.len()];
    for (i, k) in kernels.iter().enumerate() {
        if taken[i] {
            continue;
        }
        if let Some(op) = k.name.strip_suffix(&format!("_{}", DTYPES[0].0)) {
            let bf = format!("{op}_{}", DTYPES[1].0);
            let j = kernels
                .iter()
                .position(|o| o.module == k.module && o.name == bf);
            if let Some(j) = j {
                if let Some(generic) = family(&kernels[i], &kernels[j]) {
                    taken[i] = true;
                    taken[j] = true;
                    out.push(Launcher {
                        name: op.to_string(),
                        kernels: vec![&kernels[i], &kernels[j]],
                        generic,
                    });
                    continue;
                }
            }
        }
        taken[i] = true;
        out.push(Launcher {
            name: k.name.clone(),
            kernels: vec![k],
            generic: vec![false; k.params.len()],
        });
    }
    let mut names = std::collections::HashSet::new();
    for l in &out {
        if !names.insert(l.name.clone()) {
            return Err(format!(
                "two launchers would be named {} (a family and a kernel of that name)",
                l.name
            ));
        }
        for p in &l.kernels[0].params {
            if RESERVED.contains(&p.name.as_str()) {
                return Err(format!(
                    "kernels/{}.cu: kernel {}: parameter `{}` clashes with the launcher's own \
                     argument of that name; rename it",
                    l.kernels[0].module, l.kernels[0].name, p.name
                ));
            }
        }
    }
    Ok(out)
}

/// Which parameters are `T`, when `f` (f32) and `b` (bf16) differ only there.
fn family(f: &Kernel, b: &Kernel) -> Option<Vec<bool>> {
    if f.params.len() != b.params.len() {
        return None;
    }
    f.params
        .iter()
        .zip(&b.params)
        .map(|(p, q)| {
            if p.name != q.name {
                return None;
            }
            match (&p.ty, &q.ty) {
                (a, b) if a == b => Some(false),
                (
                    CType::Ptr {
                        pointee: pa,
                        mutable: ma,
                    },
                    CType::Ptr {
                        pointee: pb,
                        mutable: mb,
                    },
                ) if ma == mb && *pa == DTYPES[0].1 && *pb == DTYPES[1].1 => Some(true),
                _ => None,
            }
        })
        .collect()
}

fn rust_scalar(s: &Scalar) -> String {
    match s {
        Scalar::F32 => "f32".into(),
        Scalar::Bf16 => "half::bf16".into(),
        Scalar::I32 => "i32".into(),
        Scalar::U32 => "u32".into(),
        Scalar::I64 => "i64".into(),
        Scalar::U64 => "u64".into(),
        Scalar::U8 => "u8".into(),
        Scalar::Struct(s) => s.clone(),
    }
}

/// The Rust type a launcher takes for a parameter.
pub fn rust_type(ty: &CType, generic: bool) -> String {
    match ty {
        CType::Value(s) => rust_scalar(s),
        CType::Ptr { pointee, mutable } => {
            let p = if generic {
                "T".to_string()
            } else {
                rust_scalar(pointee)
            };
            if *mutable {
                format!("DevPtrMut<{p}>")
            } else {
                format!("DevPtr<{p}>")
            }
        }
    }
}

/// Rust keywords a C parameter name could be.
fn ident(name: &str) -> String {
    const KEYWORDS: [&str; 20] = [
        "as", "box", "fn", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "ref",
        "self", "static", "struct", "trait", "type", "use", "where", "yield",
    ];
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    }
}

/// The generated Rust source.
pub fn generate(kernels: &[Kernel]) -> Result<String, String> {
    let ls = launchers(kernels)?;
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "// @generated by build.rs (build/typed_launch.rs) from the parameter lists of\n\
         // kernels/*.cu read by build/kernel_signatures.rs. Do not edit: change the kernel.\n"
    );

    // The symbol table, indexed by kernel id.
    let _ = writeln!(
        w,
        "/// Every kernel, indexed by kernel id: (module, symbol)."
    );
    let _ = writeln!(w, "pub static KERNELS: &[KernelSym] = &[");
    let mut ids = Vec::new();
    let mut next = 0usize;
    for l in &ls {
        ids.push(next);
        for k in &l.kernels {
            let _ = writeln!(
                w,
                "    KernelSym {{ module: {:?}, symbol: {:?} }},",
                k.module, k.name
            );
            next += 1;
        }
    }
    let _ = writeln!(w, "];\n");

    let _ = writeln!(
        w,
        "/// Dtype-generic families: (op, id of its f32 kernel); the bf16 kernel follows it."
    );
    let _ = writeln!(w, "pub static FAMILIES: &[(&str, usize)] = &[");
    for (l, id) in ls.iter().zip(&ids) {
        if l.kernels.len() > 1 {
            let _ = writeln!(w, "    ({:?}, {id}),", l.name);
        }
    }
    let _ = writeln!(w, "];\n");

    // Opaque struct types.
    let mut structs: Vec<&str> = kernels
        .iter()
        .flat_map(|k| &k.params)
        .filter_map(|p| match &p.ty {
            CType::Ptr {
                pointee: Scalar::Struct(s),
                ..
            } => Some(s.as_str()),
            _ => None,
        })
        .collect();
    structs.sort();
    structs.dedup();
    for st in structs {
        let _ = writeln!(
            w,
            "/// `struct {st}` of the kernel sources, only ever behind a device pointer.\n\
             pub enum {st} {{}}\n"
        );
    }

    for (l, id) in ls.iter().zip(&ids) {
        let k0 = l.kernels[0];
        let generic = l.kernels.len() > 1;
        // The C list, with the family's storage type spelled `T`.
        let decls: Vec<String> = k0
            .params
            .iter()
            .zip(&l.generic)
            .map(|(p, &g)| match &p.ty {
                CType::Ptr { mutable, .. } if g => {
                    let c = if *mutable { "" } else { "const " };
                    format!("{c}T* {}", p.name)
                }
                ty => format!("{} {}", ty.c_decl(), p.name),
            })
            .collect();
        let symbol = if generic {
            format!("{}_{{f32,bf16}}", l.name)
        } else {
            k0.name.clone()
        };
        let _ = writeln!(
            w,
            "/// `kernels/{}.cu`: `{symbol}({})`.",
            k0.module,
            decls.join(", ")
        );
        let tparam = if generic { "<T: KernelDtype>" } else { "" };
        let _ = writeln!(w, "pub fn {}{tparam}(", ident(&l.name));
        let _ = writeln!(w, "    gpu: &Gpu,");
        let _ = writeln!(w, "    cfg: Launch,");
        for (p, &g) in k0.params.iter().zip(&l.generic) {
            let _ = writeln!(w, "    {}: {},", ident(&p.name), rust_type(&p.ty, g));
        }
        let _ = writeln!(w, ") -> Result<()> {{");
        for p in &k0.params {
            let n = ident(&p.name);
            match p.ty {
                CType::Ptr { .. } => {
                    let _ = writeln!(w, "    let mut {n} = {n}.addr();");
                }
                CType::Value(_) => {
                    let _ = writeln!(w, "    let mut {n} = {n};");
                }
            }
        }
        let args: Vec<String> = k0
            .params
            .iter()
            .map(|p| format!("arg(&mut {})", ident(&p.name)))
            .collect();
        if args.is_empty() {
            let _ = writeln!(w, "    let mut params: [*mut std::ffi::c_void; 0] = [];");
        } else {
            let _ = writeln!(w, "    let mut params = [");
            for a in &args {
                let _ = writeln!(w, "        {a},");
            }
            let _ = writeln!(w, "    ];");
        }
        let kid = if generic && *id == 0 {
            "T::INDEX".to_string()
        } else if generic {
            format!("{id} + T::INDEX")
        } else {
            id.to_string()
        };
        let _ = writeln!(
            w,
            "    // SAFETY: one value of each parameter's own type, in the kernel's order; pointers\n    \
             // come from DevPtr/DevPtrMut, valid by their constructors.\n    \
             unsafe {{ gpu.launch({kid}, cfg, &mut params) }}"
        );
        let _ = writeln!(w, "}}\n");
    }
    Ok(s)
}
