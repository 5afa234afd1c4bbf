//! Each subcommand's `--help` lists exactly its own flags, every one with help text.

use super::Cli;
use clap::CommandFactory;

const DATA: &[&str] = &[
    "config",
    "set",
    "dataset",
    "data-dir",
    "image-size",
    "synthetic-train",
    "synthetic-test",
    "device",
    "seed",
    "out",
    "workers",
    "bad-images",
    "precision",
];
const RUN: &[&str] = &[
    "model",
    "resume",
    "recompute",
    "conv-algorithms",
    "log-every",
    "progress-every",
    "dist-timeout-s",
    "bucket-mb",
    "profile",
];
const OPTIM: &[&str] = &[
    "epochs",
    "batch-size",
    "lr",
    "lr-scaling",
    "warmup",
    "weight-decay",
];
const PRETRAIN: &[&str] = &[
    "temperature",
    "head-depth",
    "proj-dim",
    "queue-size",
    "ema-momentum",
    "color-strength",
    "blur",
    "augment-on",
    "decode-on",
    "micro-batch",
    "world-size",
    "memory-limit",
    "knn-every",
    "cuda-graph",
];
const FINETUNE: &[&str] = &["ft-from-layer", "label-fraction", "labels-per-class"];
const DISTILL: &[&str] = &["student-model", "alpha", "distill-temperature"];
const LINEAR: &[&str] = &["linear-eval-fraction"];

fn shown(sub: &str) -> Vec<String> {
    let cmd = Cli::command();
    let s = cmd.find_subcommand(sub).unwrap();
    let mut v: Vec<String> = s
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| a.get_long().map(String::from))
        .collect();
    v.sort();
    v
}

fn expect(groups: &[&[&str]], extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = groups
        .iter()
        .flat_map(|g| g.iter())
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn each_subcommand_lists_exactly_its_flags() {
    let train = [DATA, RUN, OPTIM];
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "pipeline",
            expect(
                &[DATA, RUN, OPTIM, PRETRAIN, FINETUNE, DISTILL, LINEAR],
                &[],
            ),
        ),
        ("pretrain", expect(&[&train[..], &[PRETRAIN]].concat(), &[])),
        (
            "finetune",
            expect(&[&train[..], &[FINETUNE]].concat(), &["pretrained"]),
        ),
        (
            "supervised",
            expect(&[&train[..], &[FINETUNE]].concat(), &[]),
        ),
        (
            "distill",
            expect(&[&train[..], &[DISTILL]].concat(), &["teacher"]),
        ),
        (
            "linear-eval",
            expect(&[&train[..], &[LINEAR]].concat(), &["pretrained"]),
        ),
        ("eval", expect(&[DATA], &["checkpoint"])),
    ];
    for (sub, want) in cases {
        assert_eq!(shown(sub), want, "simclr {sub} --help");
    }
    assert!(!shown("eval").contains(&"world-size".to_string()));
    assert!(!shown("eval").contains(&"alpha".to_string()));
}

#[test]
fn every_flag_has_help_text() {
    let cmd = Cli::command();
    let mut missing = Vec::new();
    for sub in cmd.get_subcommands() {
        for a in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            let h = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            if h.len() < 10 {
                missing.push(format!("simclr {} --{}", sub.get_name(), a.get_id()));
            }
        }
    }
    assert!(missing.is_empty(), "flags without help: {missing:?}");
}

#[test]
fn lr_help_says_base_rate_and_peak() {
    let cmd = Cli::command();
    let ft = cmd.find_subcommand("finetune").unwrap();
    let lr = ft
        .get_arguments()
        .find(|a| a.get_long() == Some("lr"))
        .unwrap();
    let h = lr.get_help().unwrap().to_string();
    assert!(
        h.contains("Base learning rate") && h.contains("peak 2.00"),
        "{h}"
    );
}

#[test]
fn stage_short_form_becomes_set() {
    let a = [
        "simclr",
        "pipeline",
        "--finetune.lr",
        "0.1",
        "--distill.epochs=2",
        "--lr",
        "1",
    ];
    let got = super::rewrite_stage_flags(a.iter().map(|s| s.to_string()));
    let want = [
        "simclr",
        "pipeline",
        "--set",
        "finetune.lr=0.1",
        "--set",
        "distill.epochs=2",
        "--lr",
        "1",
    ];
    assert_eq!(got, want);
}

#[test]
fn old_flag_names_are_refused_with_the_new_one() {
    use clap::Parser;
    for (old, new) in [
        ("--proj-layers", "--head-depth"),
        ("--proj-layer", "--ft-from-layer"),
    ] {
        let cli = Cli::try_parse_from(["simclr", "finetune", old, "2"]).unwrap();
        let super::Command::Finetune(a) = cli.command else {
            panic!("parsed as another command")
        };
        let e = a
            .common
            .config(super::Scope::Finetune)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("{old} was renamed {new}")), "{e}");
    }
}
