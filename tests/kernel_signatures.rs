//! The build-time readers of the kernels' parameter lists (build/kernel_signatures.rs) and the
//! typed-launcher generator (build/typed_launch.rs), on synthetic, already-preprocessed text.
//! No feature needed: build.rs runs them only with `cuda`, but they are plain Rust.

#[path = "../build/kernel_signatures.rs"]
#[allow(dead_code)]
mod kernel_signatures;
#[path = "../build/typed_launch.rs"]
#[allow(dead_code)]
mod typed_launch;

use kernel_signatures::{all_kernels, host_cxx, parse_module, CType, Kernel, Param, Scalar};

fn ptr(pointee: Scalar, mutable: bool) -> CType {
    CType::Ptr { pointee, mutable }
}

fn param(name: &str, ty: CType) -> Param {
    Param {
        name: name.into(),
        ty,
    }
}

#[test]
fn reads_const_and_mutable_pointers_and_values() {
    // What FOR_DTYPES(...) expands to: both kernels on one line, bodies included.
    let text = "typedef long long i64;\n\
        extern \"C\" __global__ void add_f32(const float* a, const float* __restrict__ b, float* y, i64 n) { add_impl(a, b, y, n); } \
        extern \"C\" __global__ void add_bf16(const bf16 *a, const bf16* b, bf16 * y, long long n) { f(g(a), (b)); }\n\
        extern \"C\" __global__ void count(unsigned* done, int c, float s, unsigned long long m, const uint8_t* mask) {}\n\
        __device__ float helper(const float* x) { return *x; }\n";
    let ks = parse_module("elementwise", text).unwrap();
    assert_eq!(ks.len(), 3, "{ks:?}");
    assert_eq!(ks[0].module, "elementwise");
    assert_eq!(ks[0].name, "add_f32");
    assert_eq!(
        ks[0].params,
        vec![
            param("a", ptr(Scalar::F32, false)),
            param("b", ptr(Scalar::F32, false)),
            param("y", ptr(Scalar::F32, true)),
            param("n", CType::Value(Scalar::I64)),
        ]
    );
    assert_eq!(ks[1].params[0], param("a", ptr(Scalar::Bf16, false)));
    assert_eq!(ks[1].params[2], param("y", ptr(Scalar::Bf16, true)));
    assert_eq!(ks[1].params[3], param("n", CType::Value(Scalar::I64)));
    assert_eq!(
        ks[2].params,
        vec![
            param("done", ptr(Scalar::U32, true)),
            param("c", CType::Value(Scalar::I32)),
            param("s", CType::Value(Scalar::F32)),
            param("m", CType::Value(Scalar::U64)),
            param("mask", ptr(Scalar::U8, false)),
        ]
    );
}

#[test]
fn a_launch_bound_must_be_a_number_after_preprocessing() {
    let text = "extern \"C\" __global__ void __launch_bounds__(TPB * 2) k(float* y) { }";
    let err = parse_module("m", text).unwrap_err();
    assert!(err.contains("m.cu") && err.contains("TPB * 2"), "{err}");
    let ok = "extern \"C\" __global__ void __launch_bounds__( 512 ) k(float* y) { }";
    assert_eq!(parse_module("m", ok).unwrap()[0].max_threads, Some(512));
}

#[test]
fn reads_launch_bounds_and_struct_pointers() {
    let text = "extern \"C\" __global__ void __launch_bounds__(256, 2) ntxent_stats_f32(\n\
                  const float* z, int n2, float inv_tau, float* lse) { }\n\
                extern \"C\" __global__ void lars_norms_f32(const LarsTensor* ts, const int* chunk_tensor,\n\
                  float* partials) { }\n\
                extern \"C\" __global__ void ema(EmaTensor* ts, void) { }";
    let err = parse_module("m", text).unwrap_err();
    // `void` as a parameter after others is no type a kernel may take.
    assert!(
        err.contains("kernel ema") && err.contains("`void`"),
        "{err}"
    );

    let ks = parse_module(
        "m",
        &text[..text.find("extern \"C\" __global__ void ema").unwrap()],
    )
    .unwrap();
    assert_eq!(ks[0].name, "ntxent_stats_f32");
    assert_eq!((ks[0].max_threads, ks[1].max_threads), (Some(256), None));
    assert_eq!(ks[0].params.len(), 4);
    assert_eq!(ks[0].params[2], param("inv_tau", CType::Value(Scalar::F32)));
    assert_eq!(
        ks[1].params[0],
        param("ts", ptr(Scalar::Struct("LarsTensor".into()), false))
    );
    assert_eq!(
        ks[1].params[1],
        param("chunk_tensor", ptr(Scalar::I32, false))
    );
    assert_eq!(ks[1].params[0].ty.c_decl(), "const LarsTensor*");
    assert_eq!(ks[1].params[2].ty.c_decl(), "float*");
}

#[test]
fn an_unknown_type_is_an_error_naming_kernel_and_parameter() {
    let text = "extern \"C\" __global__ void scale_f32(const float* x, double s) {}";
    let err = parse_module("elementwise", text).unwrap_err();
    assert!(err.contains("kernels/elementwise.cu"), "{err}");
    assert!(err.contains("kernel scale_f32"), "{err}");
    assert!(err.contains("double s"), "{err}");

    let by_value = "extern \"C\" __global__ void k(LarsTensor t) {}";
    let err = parse_module("m", by_value).unwrap_err();
    assert!(
        err.contains("kernel k") && err.contains("by pointer"),
        "{err}"
    );
    let twice = "extern \"C\" __global__ void k(float** p) {}";
    assert!(parse_module("m", twice)
        .unwrap_err()
        .contains("pointers to pointers"));
}

#[test]
fn a_symbol_in_two_modules_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let kernels = dir.path().join("kernels");
    std::fs::create_dir(&kernels).unwrap();
    let body = "extern \"C\" __global__ void relu_f32(const float* x, float* y, long long n) {}\n";
    std::fs::write(kernels.join("a.cu"), body).unwrap();
    std::fs::write(kernels.join("b.cu"), body).unwrap();
    let err = all_kernels(&host_cxx(), &kernels, &dir.path().join("stub")).unwrap_err();
    assert!(err.contains("relu_f32"), "{err}");
    assert!(
        err.contains("kernels/a.cu") && err.contains("kernels/b.cu"),
        "{err}"
    );

    // Macros are expanded before reading: one definition per dtype.
    std::fs::remove_file(kernels.join("b.cu")).unwrap();
    let macro_src =
        "#define K(sfx, T) extern \"C\" __global__ void neg_##sfx(const T* x, T* y) {}\n\
                     K(f32, float) K(bf16, bf16)\n";
    std::fs::write(kernels.join("b.cu"), macro_src).unwrap();
    let ks = all_kernels(&host_cxx(), &kernels, &dir.path().join("stub")).unwrap();
    let names: Vec<_> = ks
        .iter()
        .map(|k| (k.module.as_str(), k.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [("a", "relu_f32"), ("b", "neg_f32"), ("b", "neg_bf16")]
    );
}

fn kernel(module: &str, name: &str, params: Vec<Param>) -> Kernel {
    Kernel {
        module: module.into(),
        name: name.into(),
        params,
        max_threads: None,
    }
}

fn unary(module: &str, name: &str, t: Scalar, n: Scalar) -> Kernel {
    kernel(
        module,
        name,
        vec![
            param("x", ptr(t.clone(), false)),
            param("y", ptr(t, true)),
            param("stats", ptr(Scalar::F32, true)),
            param("n", CType::Value(n)),
        ],
    )
}

#[test]
fn a_dtype_pair_becomes_one_generic_launcher() {
    let ks = vec![
        unary("m", "neg_f32", Scalar::F32, Scalar::I64),
        unary("m", "neg_bf16", Scalar::Bf16, Scalar::I64),
        kernel("m", "finish", vec![param("p", ptr(Scalar::F32, false))]),
    ];
    let ls = typed_launch::launchers(&ks).unwrap();
    assert_eq!(ls.len(), 2);
    assert_eq!(ls[0].name, "neg");
    assert_eq!(ls[0].kernels.len(), 2);
    // x and y are the storage type; the f32 statistics stay f32 in both.
    assert_eq!(ls[0].generic, [true, true, false, false]);
    assert_eq!(ls[1].name, "finish");

    let src = typed_launch::generate(&ks).unwrap();
    assert!(src.starts_with("// @generated"), "{src}");
    assert!(src.contains("pub fn neg<T: KernelDtype>("), "{src}");
    assert!(
        src.contains("    x: DevPtr<T>,\n    y: DevPtrMut<T>,\n"),
        "{src}"
    );
    assert!(
        src.contains("    stats: DevPtrMut<f32>,\n    n: i64,\n"),
        "{src}"
    );
    assert!(
        src.contains("gpu.launch(T::INDEX, cfg, &mut params)"),
        "{src}"
    );
    assert!(src.contains("pub fn finish(\n"), "{src}");
    assert!(src.contains("gpu.launch(2, cfg, &mut params)"), "{src}");
    assert!(src.contains("KernelSym { module: \"m\", symbol: \"neg_bf16\" }"));
    assert!(src.contains("(\"neg\", 0),"), "{src}");
}

#[test]
fn pairs_that_differ_beyond_the_dtype_stay_separate_kernels() {
    // A value type differs: two plain launchers under the full symbols.
    let ks = vec![
        unary("m", "neg_f32", Scalar::F32, Scalar::I64),
        unary("m", "neg_bf16", Scalar::Bf16, Scalar::I32),
    ];
    let names: Vec<_> = typed_launch::launchers(&ks)
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(names, ["neg_f32", "neg_bf16"]);
    // Same lists in two modules: no family either.
    let ks = vec![
        unary("a", "neg_f32", Scalar::F32, Scalar::I64),
        unary("b", "neg_bf16", Scalar::Bf16, Scalar::I64),
    ];
    assert_eq!(typed_launch::launchers(&ks).unwrap().len(), 2);
}

#[test]
fn struct_pointers_get_opaque_types_and_reserved_names_are_refused() {
    let ks = vec![kernel(
        "multi_tensor",
        "ema",
        vec![param("ts", ptr(Scalar::Struct("EmaTensor".into()), false))],
    )];
    let src = typed_launch::generate(&ks).unwrap();
    assert!(src.contains("pub enum EmaTensor {}"), "{src}");
    assert!(src.contains("    ts: DevPtr<EmaTensor>,\n"), "{src}");

    let ks = vec![kernel(
        "m",
        "k",
        vec![param("cfg", CType::Value(Scalar::I32))],
    )];
    let err = typed_launch::generate(&ks).unwrap_err();
    assert!(err.contains("kernel k") && err.contains("`cfg`"), "{err}");
}

#[test]
fn the_real_kernels_make_one_generic_launcher_per_dtype_pair() {
    let stub = tempfile::tempdir().unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels");
    let ks = all_kernels(&host_cxx(), &dir, stub.path()).unwrap();
    let ls = typed_launch::launchers(&ks).unwrap();
    // Every `<op>_f32` with an `<op>_bf16` beside it is one family: no list differs but in T.
    for k in &ks {
        if let Some(op) = k.name.strip_suffix("_f32") {
            if ks.iter().any(|o| o.name == format!("{op}_bf16")) {
                let l = ls.iter().find(|l| l.name == op);
                assert!(l.is_some_and(|l| l.kernels.len() == 2), "{op} is no family");
            }
        }
    }
    let reduce = ls.iter().find(|l| l.name == "batch_norm_reduce").unwrap();
    // x, y, dy: T; gamma, beta, mean, invstd: f32; mask, m, c, rows; part: f32, done: u32;
    // dbeta, dgamma: f32.
    let mut t = [false; 15];
    t[..3].fill(true);
    assert_eq!(reduce.generic, t);
    let cast = ls.iter().find(|l| l.name == "cast_f32_to_bf16").unwrap();
    assert_eq!(cast.kernels.len(), 1);
    let src = typed_launch::generate(&ks).unwrap();
    assert!(src.contains("    ts: DevPtr<LarsTensor>,\n"), "{src}");
}
