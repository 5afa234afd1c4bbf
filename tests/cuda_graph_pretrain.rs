//! `simclr pretrain --cuda-graph on` on the (emulated) device: the same logged losses and
//! accuracies, step for step, and the same saved weights, bit for bit, as the eager run, with
//! the learning-rate schedule (warmup, then cosine) read inside the graph from the device.
#![cfg(feature = "cuda")]

mod support;
use support::scratch::scratch;

#[path = "cuda_common.rs"]
mod common;

fn run(out: &std::path::Path, graph: &str) -> (i32, String, String) {
    let mut a = support::tiny_run::args("pretrain", out, 2, &["--log-every", "1"]);
    let at = a
        .iter()
        .position(|s| s == "cpu")
        .expect("the tiny run names its device");
    a[at] = support::cli::gpu_device().to_string();
    a.extend(["--cuda-graph".to_string(), graph.to_string()]);
    support::cli::simclr(&support::cli::bin(), &a)
}

/// (step, loss, contrastive_acc) of every logged step.
fn steps(out: &std::path::Path) -> Vec<(u64, f64, f64)> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["stage"] == "pretrain" && r.get("loss").is_some())
        .map(|r| {
            (
                r["step"].as_u64().unwrap(),
                r["loss"].as_f64().unwrap(),
                r["contrastive_acc"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn graph_replayed_pretraining_matches_eager_bit_for_bit() {
    if common::gpu().is_none() {
        return;
    }
    let (eager, graph) = (scratch("graph", "eager"), scratch("graph", "on"));
    let (code, _, err) = run(&eager, "off");
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&graph, "on");
    assert_eq!(code, 0, "{err}");
    let (e, g) = (steps(&eager), steps(&graph));
    assert_eq!(e.len(), 10, "{e:?}");
    assert_eq!(e, g, "eager vs graph, per logged step");
    let w = |p: &std::path::Path| std::fs::read(p.join("pretrain.safetensors")).unwrap();
    assert!(w(&eager) == w(&graph), "the saved weights differ");
}
