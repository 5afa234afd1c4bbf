//! `--profile` end to end: `simclr bench` and the trainer print a table whose op rows cover the
//! step (percentages summing to 100) and name the model's ops, forward and backward.

use std::process::Command;

fn simclr(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_simclr"))
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {err}");
    String::from_utf8_lossy(&out.stdout).into()
}

/// The rows of the block whose header line starts with `header`, split on whitespace.
fn block<'a>(text: &'a str, header: &str) -> Vec<Vec<&'a str>> {
    text.lines()
        .skip_while(|l| !l.starts_with(header))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect()
}

/// Op rows as (name, phase, % of step); names may hold spaces ("conv2d backward").
fn op_rows(text: &str) -> Vec<(String, String, f64)> {
    block(text, "op ")
        .into_iter()
        .map(|w| {
            let n = w.len();
            assert!(n >= 5, "short op row {w:?}");
            (
                w[..n - 4].join(" "),
                w[n - 4].to_string(),
                w[n - 1].parse().unwrap(),
            )
        })
        .collect()
}

fn check_table(text: &str, ops: &[(&str, &str)]) {
    let rows = op_rows(text);
    for (name, phase) in ops {
        assert!(
            rows.iter().any(|(n, p, _)| n == name && p == phase),
            "no {name} [{phase}] row in\n{text}"
        );
    }
    let sum: f64 = rows.iter().map(|r| r.2).sum();
    // Each printed percentage is rounded to 0.01.
    let slack = 0.005 * rows.len() as f64 + 1e-9;
    assert!(
        (sum - 100.0).abs() <= slack,
        "op rows sum to {sum}%\n{text}"
    );
    let phases = block(text, "phase ");
    let names: Vec<&str> = phases.iter().map(|w| w[0]).collect();
    assert_eq!(
        names,
        ["forward", "backward", "optimizer", "other"],
        "{text}"
    );
    let sum: f64 = phases.iter().map(|w| w[2].parse::<f64>().unwrap()).sum();
    assert!(
        (sum - 100.0).abs() <= 0.02 + 1e-9,
        "phases sum to {sum}%\n{text}"
    );
    for p in &phases[..3] {
        assert!(
            p[1].parse::<f64>().unwrap() > 0.0,
            "empty phase {p:?}\n{text}"
        );
    }
    assert!(text.contains("layer (self time)"), "{text}");
}

#[test]
fn bench_profile_prints_a_table_covering_the_step() {
    let text = simclr(&[
        "bench",
        "--model",
        "r18_0.25x_sk1",
        "--batch-size",
        "8",
        "--image-size",
        "32",
        "--warmup",
        "1",
        "--steps",
        "1",
        "--task",
        "supervised",
        "--profile",
    ]);
    assert!(text.contains("profile of one more step"), "{text}");
    check_table(
        &text,
        &[
            ("conv2d", "forward"),
            ("bn_act", "forward"),
            ("cross_entropy", "forward"),
            ("conv2d backward", "backward"),
            ("bn_act backward", "backward"),
            ("cross_entropy backward", "backward"),
        ],
    );
    let layers = block(&text, "layer (self time)");
    let named: Vec<&str> = layers
        .iter()
        .map(|w| w[0])
        .take_while(|n| !n.starts_with('(') && *n != "layers")
        .collect();
    assert!(
        named.len() >= 20
            && named
                .iter()
                .all(|n| n.starts_with("encoder") || n.starts_with("classifier")),
        "{text}"
    );
    assert!(text.contains("layers cover"), "{text}");
}

#[test]
fn bench_profile_of_the_pretraining_step_has_the_contrastive_ops() {
    let text = simclr(&[
        "bench",
        "--model",
        "r50_0.25x_sk1",
        "--batch-size",
        "4",
        "--image-size",
        "32",
        "--warmup",
        "0",
        "--steps",
        "1",
        "--no-plan",
        "--profile",
    ]);
    check_table(
        &text,
        &[
            ("sk_mix", "forward"),
            ("sk_pool", "forward"),
            ("ntxent", "forward"),
            ("sk_mix backward", "backward"),
            ("ntxent backward", "backward"),
            ("l2_normalize backward", "backward"),
        ],
    );
    let conv = text
        .lines()
        .find(|l| l.starts_with("convolutions: "))
        .unwrap_or_else(|| panic!("no convolution rate in\n{text}"));
    let words: Vec<&str> = conv.split_whitespace().collect();
    let at = words.iter().position(|w| w.starts_with("TFLOP/s")).unwrap();
    let rate: f64 = words[at - 1].parse().unwrap();
    assert!(rate > 0.0, "{conv}");
}

#[test]
fn trainer_profile_prints_the_third_step() {
    let out = std::env::temp_dir().join(format!("simclr-profile-{}", std::process::id()));
    let text = simclr(&[
        "pretrain",
        "--model",
        "r18_0.25x_sk1",
        "--synthetic-train",
        "40",
        "--synthetic-test",
        "20",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--out",
        out.to_str().unwrap(),
        "--profile",
    ]);
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(
        text.matches("profile of training step 3").count(),
        1,
        "{text}"
    );
    check_table(
        &text,
        &[
            ("conv2d", "forward"),
            ("ntxent", "forward"),
            ("conv2d backward", "backward"),
            ("ntxent backward", "backward"),
        ],
    );
}
