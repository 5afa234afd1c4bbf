//! The emulated build's rewrite of `__shared__` declarations (build/shared_rewrite.rs): every
//! declared name becomes a reference through a pointer the compiler cannot see through, on the
//! same lines, so GCC instruments every access and the emulator checks it. No feature needed.

#[path = "../build/shared_rewrite.rs"]
mod shared_rewrite;

use shared_rewrite::{rewrite, rewrite_dir};

#[test]
fn declarations_become_references_on_the_same_lines() {
    let src = "void f() {\n  __shared__ float tmp[RED_THREADS], res[2 * RED_THREADS];\n  \
               __shared__ union {\n    T t;\n    float zs[A][B];\n  } sm;\n  \
               __shared__ bool last; // __shared__ int not_this;\n  \
               const char* s = \"__shared__ x;\";\n}\n";
    let out = rewrite(src, "vec.cuh").unwrap();
    assert_eq!(out.lines().count(), src.lines().count());
    let v = "emu_shared_vec_cuh_2_v";
    assert!(out.contains(&format!(
        "struct emu_shared_vec_cuh_2 {{ unsigned char emu_red_0[64]; float tmp[RED_THREADS]; \
         unsigned char emu_red_1[64];float res[2 * RED_THREADS]; unsigned char emu_red_2[64]; }}; \
         static thread_local emu_shared_vec_cuh_2 {v}; \
         static const bool {v}_tmp = emu_shared_declared(&{v}.tmp, sizeof({v}.tmp), \
         \"tmp (vec.cuh:2)\"); (void){v}_tmp; auto& tmp = emu_launder(&{v})->tmp; \
         static const bool {v}_res = emu_shared_declared(&{v}.res, sizeof({v}.res), \
         \"res (vec.cuh:2)\"); (void){v}_res; auto& res = emu_launder(&{v})->res;"
    )));
    assert!(out.contains(
        "  } sm; unsigned char emu_red_1[64]; }; static thread_local emu_shared_vec_cuh_3 "
    ));
    assert!(out.contains("\"sm (vec.cuh:3)\""));
    assert!(out.contains("auto& sm = emu_launder(&emu_shared_vec_cuh_3_v)->sm;"));
    assert!(out.contains("auto& last = emu_launder(&emu_shared_vec_cuh_7_v)->last;"));
    // Comments and strings are left alone.
    assert!(out.contains("// __shared__ int not_this;"));
    assert!(out.contains("\"__shared__ x;\""));
    assert_eq!(out.matches("__shared__").count(), 2);
}

#[test]
fn what_cannot_be_rewritten_is_refused() {
    for (src, want) in [
        (
            "extern __shared__ float buf[];",
            "line 1: dynamic shared memory",
        ),
        (
            "\n__shared__ float s[4]",
            "line 2: a __shared__ declaration without its `;`",
        ),
        ("__shared__ ;", "line 1: no name"),
        (
            "__shared__ float* p, q;",
            "line 1: declare each __shared__ pointer",
        ),
        (
            "__shared__ float p, *q;",
            "line 1: declare each __shared__ pointer",
        ),
    ] {
        let e = rewrite(src, "k.cu").unwrap_err();
        assert!(e.contains(want), "{src:?}: {e}");
    }
}

/// The kernels as the emulated build compiles them: every declaration rewritten, every line
/// where it was.
#[test]
fn every_kernel_declaration_is_rewritten() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("simclr-shared-rewrite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    rewrite_dir(&root.join("kernels"), &out).unwrap();
    let (mut declarations, mut references) = (0, 0);
    for entry in std::fs::read_dir(root.join("kernels")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        let (src, got) = (
            std::fs::read_to_string(&path).unwrap(),
            std::fs::read_to_string(out.join(name)).unwrap(),
        );
        assert_eq!(got.lines().count(), src.lines().count(), "{name:?}");
        declarations += src
            .lines()
            .filter(|l| l.trim_start().starts_with("__shared__"))
            .count();
        references += got.matches("struct emu_shared_").count();
        for line in got.lines() {
            let code = line.split("//").next().unwrap();
            assert!(!code.contains("__shared__"), "{name:?}: {line}");
        }
    }
    assert!(declarations >= 10, "only {declarations} declarations found");
    assert_eq!(references, declarations);
    std::fs::remove_dir_all(&out).unwrap();
}
