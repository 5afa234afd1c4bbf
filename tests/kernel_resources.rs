//! Every kernel's sm_90 resources, as ptxas reports them at build time: the reader of ptxas's
//! report (build/kernel_resources.rs, on synthetic text: no feature needed), the occupancy
//! arithmetic, and with `cuda` the rules every kernel keeps: no spills, no local memory, and at
//! least two resident blocks of 256 threads per SM.

#[path = "../build/kernel_resources.rs"]
mod kernel_resources;
#[allow(dead_code)] // this suite runs the binary only
mod support;

use kernel_resources::{parse, render, Resources};
use support::cli::{bin, simclr};

/// What nvcc --resource-usage printed for a module built for PTX and sm_90, with a callee that
/// was not inlined (its properties must not land on the entry) and another architecture.
const REPORT: &str = "\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'scale_f32' for 'sm_90'
ptxas info    : Function properties for helper_z
    8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads
ptxas info    : Function properties for scale_f32
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 14 registers, used 0 barriers
ptxas info    : Compile time = 4.615 ms
ptxas info    : Compiling entry function 'stats_f32' for 'sm_90'
ptxas info    : Function properties for stats_f32
    16 bytes stack frame, 12 bytes spill stores, 36 bytes spill loads
ptxas info    : Used 64 registers, used 1 barriers, 16 bytes cumulative stack size, 16640 bytes smem
ptxas info    : Compiling entry function 'stats_f32' for 'sm_80'
ptxas info    : Function properties for stats_f32
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 90 registers, used 1 barriers, 16640 bytes smem
";

#[test]
fn reads_each_entry_of_the_native_architecture() {
    let got = parse("ntxent", "sm_90", REPORT).unwrap();
    let want = vec![
        Resources {
            module: "ntxent".into(),
            kernel: "scale_f32".into(),
            registers: 14,
            ..Resources::default()
        },
        Resources {
            module: "ntxent".into(),
            kernel: "stats_f32".into(),
            registers: 64,
            barriers: 1,
            shared_bytes: 16640,
            stack_bytes: 16,
            spill_store_bytes: 12,
            spill_load_bytes: 36,
        },
    ];
    assert_eq!(got, want);
    let sm80 = parse("ntxent", "sm_80", REPORT).unwrap();
    assert_eq!(sm80.len(), 1);
    assert_eq!(
        (sm80[0].kernel.as_str(), sm80[0].registers),
        ("stats_f32", 90)
    );
}

#[test]
fn an_entry_without_its_lines_is_an_error() {
    let no_used = REPORT.replace("ptxas info    : Used 14 registers, used 0 barriers\n", "");
    let e = parse("ntxent", "sm_90", &no_used).unwrap_err();
    assert!(e.contains("scale_f32") && e.contains("ntxent.cu"), "{e}");
    let no_props = REPORT.replace(
        "ptxas info    : Function properties for stats_f32\n    16 bytes",
        "ptxas info    : Function properties for other\n    16 bytes",
    );
    let e = parse("ntxent", "sm_90", &no_props).unwrap_err();
    assert!(e.contains("stats_f32"), "{e}");
    let cut = &REPORT[..REPORT.find("    16 bytes stack").unwrap()];
    let e = parse("ntxent", "sm_90", cut).unwrap_err();
    assert!(e.contains("stats_f32"), "{e}");
    let reworded = REPORT.replace("bytes spill loads", "bytes spilled loads");
    let e = parse("ntxent", "sm_90", &reworded).unwrap_err();
    assert!(e.contains("spill loads"), "{e}");
}

#[test]
fn renders_a_sorted_rust_table() {
    let mut rows = parse("ntxent", "sm_90", REPORT).unwrap();
    rows.reverse();
    let text = render(&rows);
    let scale = text.find("kernel: \"scale_f32\"").unwrap();
    let stats = text.find("kernel: \"stats_f32\"").unwrap();
    assert!(scale < stats, "{text}");
    assert!(text.contains(
        "registers: 64, barriers: 1, shared_bytes: 16640, stack_bytes: 16, \
         spill_store_bytes: 12, spill_load_bytes: 36"
    ));
    assert!(text.starts_with("/// ") && text.ends_with("];\n"), "{text}");
}

#[cfg(not(feature = "cuda"))]
#[test]
fn the_report_needs_the_cuda_build() {
    let (code, _, err) = simclr(&bin(), &["info", "--kernels"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--kernels") && err.contains("--features cuda"),
        "{err}"
    );
}

#[cfg(feature = "cuda")]
mod built {
    use super::{bin, simclr};
    use simclr::cuda::kernel_resources::{of, KernelResources, KERNEL_RESOURCES};

    fn kernel(registers: u32, shared_bytes: u32) -> KernelResources {
        KernelResources {
            module: "m",
            kernel: "k",
            registers,
            barriers: 1,
            shared_bytes,
            stack_bytes: 0,
            spill_store_bytes: 0,
            spill_load_bytes: 0,
        }
    }

    /// Blocks, warps and limit per SM, as CUDA's occupancy calculator gives them for
    /// compute capability 9.0.
    #[test]
    fn occupancy_follows_the_sm90_limits() {
        let o = |r: u32, s: u32, t: u32| {
            let o = kernel(r, s).occupancy(t);
            (o.blocks, o.warps, o.limit)
        };
        assert_eq!(o(32, 0, 256), (8, 64, "warps"));
        // 101 registers: 3,328 per warp (13 units of 256), 19 warps' worth, 2 blocks of 8.
        assert_eq!(o(101, 0, 256), (2, 16, "registers"));
        assert_eq!(o(64, 0, 256), (4, 32, "registers"));
        // 48 KiB static + 1 KiB reserved per block: 4 blocks in 228 KiB.
        assert_eq!(o(16, 49_152, 128), (4, 16, "shared memory"));
        assert_eq!(o(16, 0, 32), (32, 32, "blocks"));
        assert_eq!(o(255, 0, 1024), (0, 0, "registers"));
        assert_eq!(o(0, 0, 64), (32, 64, "warps"));
    }

    #[test]
    fn no_kernel_spills_or_uses_local_memory() {
        let bad: Vec<String> = KERNEL_RESOURCES
            .iter()
            .filter(|r| r.stack_bytes + r.spill_store_bytes + r.spill_load_bytes > 0)
            .map(|r| format!("{r:?}"))
            .collect();
        assert!(
            bad.is_empty(),
            "local memory or spills:\n{}",
            bad.join("\n")
        );
    }

    #[test]
    fn every_kernel_keeps_two_blocks_of_256_threads_per_sm() {
        let low: Vec<String> = KERNEL_RESOURCES
            .iter()
            .filter(|r| r.occupancy(256).blocks < 2)
            .map(|r| format!("{}: {:?} ({:?})", r.kernel, r.occupancy(256), r))
            .collect();
        assert!(low.is_empty(), "{}", low.join("\n"));
    }

    #[test]
    fn the_table_holds_every_kernel_once() {
        assert!(KERNEL_RESOURCES.len() >= 100, "{}", KERNEL_RESOURCES.len());
        let mut names: Vec<&str> = KERNEL_RESOURCES.iter().map(|r| r.kernel).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), KERNEL_RESOURCES.len());
        let stats = of("ntxent_stats_bf16").unwrap();
        assert_eq!((stats.module, stats.barriers), ("ntxent", 1));
        assert!(stats.shared_bytes > 0 && stats.registers > 0, "{stats:?}");
        assert!(of("no_such_kernel").is_none());
    }

    #[test]
    fn info_prints_every_kernel() {
        let (code, text, err) = simclr(&bin(), &["info", "--kernels"]);
        assert_eq!(code, 0, "{err}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), KERNEL_RESOURCES.len() + 2, "{text}");
        assert!(
            lines[0].starts_with("module") && lines[0].contains("limit"),
            "{text}"
        );
        for r in KERNEL_RESOURCES {
            let line = lines
                .iter()
                .find(|l| l.split_whitespace().nth(1) == Some(r.kernel));
            let cols: Vec<&str> = line.unwrap().split_whitespace().collect();
            let occ = r.occupancy(256);
            let want = [r.registers, r.shared_bytes, r.stack_bytes].map(|v| v.to_string());
            assert_eq!(cols[2..5], want, "{cols:?}");
            assert_eq!(cols[6..8], [occ.blocks.to_string(), occ.warps.to_string()]);
        }
    }
}
