//! `simclr bench`: the memory plan predicts the peak it then measures, a configuration that does
//! not fit stops before its first step with what would fit, and the step is timed.

use std::process::Command;

fn simclr(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_simclr"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

const TINY: &[&str] = &[
    "bench",
    "--model",
    "r18_0.25x_sk1",
    "--image-size",
    "16",
    "--warmup",
    "0",
];

/// (measured, predicted) GiB from the "peak memory" line.
fn peaks(out: &str) -> (f64, f64) {
    let line = out
        .lines()
        .find(|l| l.starts_with("peak memory:"))
        .unwrap_or_else(|| panic!("no peak line in {out}"));
    let nums: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

#[test]
fn the_plan_predicts_the_measured_peak() {
    let args = [TINY, &["--batch-size", "32", "--steps", "2"]].concat();
    let (code, out, err) = simclr(&args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ms/step"), "{out}");
    let (measured, predicted) = peaks(&out);
    // Probes at 8 and 16 rows, the step at 64: the line extrapolates 4x.
    let rel = (predicted - measured).abs() / measured;
    assert!(
        rel < 0.15,
        "predicted {predicted} GiB, measured {measured} GiB"
    );
    // The loss of the fixed batch goes down over the two steps.
    let losses: Vec<f64> = out
        .lines()
        .find(|l| l.starts_with("loss per step"))
        .unwrap()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(losses.len(), 2, "{out}");
}

#[test]
fn micro_batching_lowers_the_peak_and_still_trains() {
    let whole = [TINY, &["--batch-size", "32", "--steps", "1"]].concat();
    let micro = [whole.as_slice(), &["--micro-batch", "8"]].concat();
    let (c1, o1, e1) = simclr(&whole);
    let (c2, o2, e2) = simclr(&micro);
    assert_eq!((c1, c2), (0, 0), "{e1}{e2}");
    let (m1, _) = peaks(&o1);
    let (m2, p2) = peaks(&o2);
    assert!(m2 < 0.6 * m1, "micro-batched peak {m2} vs whole {m1}");
    assert!((p2 - m2).abs() / m2 < 0.25, "predicted {p2}, measured {m2}");
}

#[test]
fn a_batch_that_does_not_fit_stops_before_the_first_step() {
    let args = [
        TINY,
        &[
            "--batch-size",
            "512",
            "--steps",
            "1",
            "--memory-limit",
            "0.05",
        ],
    ]
    .concat();
    let (code, out, err) = simclr(&args);
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains("ms/step"), "a step ran: {out}");
    assert!(err.starts_with("error: out of memory:"), "{err}");
    assert!(
        err.contains("Largest batch without micro-batching"),
        "{err}"
    );
    assert!(err.contains("--micro-batch"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // What it says fits, fits.
    let micro: String = err
        .split("--micro-batch ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    let ok = [
        TINY,
        &[
            "--batch-size",
            "512",
            "--steps",
            "1",
            "--memory-limit",
            "0.05",
            "--micro-batch",
            &micro,
        ],
    ]
    .concat();
    let (code, out, err) = simclr(&ok);
    assert_eq!(code, 0, "--micro-batch {micro}: {err}");
    let (measured, _) = peaks(&out);
    assert!(
        measured <= 0.05 * 1.1,
        "measured {measured} GiB over the limit"
    );
}

#[test]
fn impossible_bench_settings_are_errors() {
    for extra in [
        &["--batch-size", "0"][..],
        &["--memory-limit=-3"],
        &["--micro-batch", "0"],
        &["--task", "supervised", "--micro-batch", "4"],
    ] {
        let args = [TINY, extra].concat();
        let (code, _, err) = simclr(&args);
        assert_eq!(code, 1, "{extra:?}: {err}");
        assert!(err.starts_with("error: "), "{err}");
    }
}

#[test]
fn recompute_lowers_the_measured_peak() {
    let base = [TINY, &["--batch-size", "32", "--steps", "1", "--no-plan"]].concat();
    let re = [base.as_slice(), &["--recompute"]].concat();
    let (c1, o1, e1) = simclr(&base);
    let (c2, o2, e2) = simclr(&re);
    assert_eq!((c1, c2), (0, 0), "{e1}{e2}");
    let kept = peak_measured(&o1);
    let recomputed = peak_measured(&o2);
    assert!(recomputed < 0.95 * kept, "{recomputed} vs {kept} GiB");
}

/// The measured peak (GiB) of a run without a plan.
fn peak_measured(out: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.starts_with("peak memory:"))
        .unwrap_or_else(|| panic!("no peak line in {out}"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn a_bare_bench_is_sized_for_the_cpu() {
    let t = std::time::Instant::now();
    let (code, out, err) = simclr(&["bench"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("pretrain step of r50_0.25x_sk1 at batch 32 (64 rows of 64 px) on cpu"),
        "{out}"
    );
    // About 3 s of CPU time here (README); a minute is the promise.
    assert!(t.elapsed().as_secs() < 60, "took {:?}", t.elapsed());
}
