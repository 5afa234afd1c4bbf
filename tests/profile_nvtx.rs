//! The NVTX ranges as a profiler sees them: `simclr bench` runs with a stand-in for Nsight
//! Systems injected the way nsys injects itself (NVTX_INJECTION64_PATH; tests/nvtx/check_tool.c,
//! built by build.rs), which counts the ranges by name and checks that they balance. Needs no GPU.
#![cfg(feature = "cuda")]

use std::collections::HashMap;
use std::process::Command;

#[test]
fn bench_emits_balanced_named_nvtx_ranges() {
    let tool = env!("SIMCLR_NVTX_CHECK_TOOL");
    assert!(
        std::path::Path::new(tool).is_file(),
        "the stand-in profiler {tool} is missing (built by build.rs)"
    );
    let report = std::env::temp_dir().join(format!("simclr-nvtx-{}.txt", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_simclr"))
        .args(["bench", "--model", "r18_0.25x_sk1", "--batch-size", "2"])
        .args(["--image-size", "32", "--warmup", "0", "--steps", "2"])
        .args(["--task", "supervised", "--no-plan"])
        .env("NVTX_INJECTION64_PATH", tool)
        .env("NVTX_CHECK_OUT", &report)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&report).expect("the stand-in profiler wrote no report");
    let _ = std::fs::remove_file(&report);

    let mut stats = HashMap::new();
    let mut ranges: HashMap<String, usize> = HashMap::new();
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("range", rest)) => {
                let (count, name) = rest.split_once(' ').unwrap();
                ranges.insert(name.to_string(), count.parse().unwrap());
            }
            Some((key, v)) => {
                stats.insert(key.to_string(), v.parse::<usize>().unwrap());
            }
            None => panic!("odd report line {line:?}"),
        }
    }
    assert_eq!(stats["open_at_exit"], 0, "{text}");
    assert_eq!(stats["bad_pops"], 0, "{text}");
    // optimizer or forward > layer > block > module > kernel, at least.
    assert!(stats["max_depth"] >= 5, "{text}");
    // Two steps: each named range once per step, each conv kernel and backward once per conv.
    let convs = ranges["conv2d"];
    assert_eq!(convs % 2, 0, "{text}");
    for (name, count) in [
        ("forward", 2),
        ("backward", 2),
        ("optimizer", 2),
        ("encoder", 2),
        ("encoder.stem.conv0", 2),
        ("encoder.layer1.0.conv1", 2),
        ("encoder.layer4.1.bn2", 2),
        ("classifier", 2),
        ("conv2d backward", convs),
        ("conv2d_backward_weight", convs),
        ("cross_entropy", 2),
        ("cross_entropy backward", 2),
    ] {
        assert_eq!(ranges.get(name), Some(&count), "{name} in\n{text}");
    }
}
