//! The SimCLRv2 trainer: pretraining, fine-tuning from a head layer, distillation, linear
//! evaluation, the supervised baseline, evaluation, and the whole pipeline. Written against the
//! engine's ops only, so every stage runs on whichever backend the parameters live on.

pub mod augment_choice;
pub mod ckpt_check;
pub mod common;
pub mod config;
pub mod config_checks;
pub mod config_keys;
pub mod contrastive_step;
pub mod data_parallel;
pub mod decode_on;
pub mod dist_run;
pub mod distill;
pub mod epoch_loop;
pub mod finetune;
pub mod gain;
pub mod grad_cache;
pub mod graph_step;
pub mod guard;
pub mod input;
pub mod knn_monitor;
pub mod labelled_stream;
pub mod linear_eval;
pub mod lock;
pub mod loss_window;
pub mod memory_plan;
pub mod model;
pub mod plot;
pub mod pretrain;
pub mod progress;
pub mod resize;
pub mod resume_check;
pub mod run_dir;
pub mod signals;
pub mod state;
pub mod step_stats;
pub mod tensorboard;
pub mod upload;

pub use common::Env;
pub use config::Config;

use crate::{Error, Result};
use serde_json::json;
use std::path::Path;

/// What a stage reports to the pipeline's table.
pub struct StageResult {
    pub stage: &'static str,
    pub summary: serde_json::Value,
    pub top1: Option<f64>,
    pub top5: Option<f64>,
    pub complete: bool,
}

/// Evaluates a classifier checkpoint (fine-tuned, distilled, supervised, linear-eval) on the
/// test split.
pub fn eval(env: &mut Env, path: &Path) -> Result<StageResult> {
    config_checks::require_test_split(&env.cfg, &env.splits)?;
    let meta = model::ModelMeta::read(path)?;
    if meta.stage == pretrain::STAGE {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            msg: "is a pretraining checkpoint (no classifier): run linear-eval or finetune on it"
                .into(),
        });
    }
    if meta.num_classes != env.num_classes() || meta.in_channels != env.channels() {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            msg: format!(
                "classifies {} classes of {}-channel images; the dataset has {} classes of {}-channel images",
                meta.num_classes,
                meta.in_channels,
                env.num_classes(),
                env.channels()
            ),
        });
    }
    ckpt_check::check(path, &meta, |_| true, true)?;
    let mut store = env.store(6);
    let clf = model::Classifier::new(&mut store, meta.clone())?;
    crate::checkpoint::load(&mut store, path)?;
    store.to(env.device, crate::DType::F32)?;
    let ev = common::evaluate(env, &clf, &mut store, env.splits.test.clone())?;
    println!(
        "{}: top-1 {:.2}%, top-5 {:.2}%",
        path.display(),
        100.0 * ev.top1,
        100.0 * ev.top5
    );
    let summary = json!({ "checkpoint": path.display().to_string(), "top1": ev.top1, "top5": ev.top5, "test_loss": ev.loss });
    env.run.set_summary("eval", summary.clone())?;
    Ok(StageResult {
        stage: "eval",
        summary,
        top1: Some(ev.top1),
        top5: Some(ev.top5),
        complete: true,
    })
}

/// Pretrain → fine-tune → distill, plus linear evaluation and the supervised baseline on the
/// same labelled subset; prints the table of results and writes summary.json and metrics.png.
pub fn pipeline(env: &mut Env) -> Result<Vec<StageResult>> {
    config_checks::require_test_split(&env.cfg, &env.splits)?;
    let mut results = Vec::new();
    let stop = env.stop_after_epochs;
    macro_rules! stage {
        ($e:expr) => {{
            let r = $e?;
            let complete = r.complete;
            results.push(r);
            if !complete {
                // Interrupted on purpose (testing): the remaining stages wait for --resume.
                return Ok(results);
            }
        }};
    }
    let _ = stop;
    stage!(pretrain::run(env));
    let pre = env.path("pretrain.safetensors");
    stage!(finetune::run(env, "finetune", Some(&pre)));
    let teacher = env.path("finetune.safetensors");
    stage!(distill::run(env, &teacher));
    stage!(linear_eval::run(env, &pre));
    stage!(finetune::run(env, "supervised", None));
    print_table(&results, env);
    let gain = gain::print(&results);
    let labelled = results
        .iter()
        .find(|r| r.stage == "finetune")
        .and_then(|r| r.summary.get("labelled").cloned());
    env.run.set_summary(
        "pipeline",
        json!({
            "dataset": env.cfg.dataset, "model": env.cfg.model, "labelled": labelled,
            "top1": results.iter().filter_map(|r| r.top1.map(|t| (r.stage, t))).collect::<std::collections::BTreeMap<_, _>>(),
            "gain_points": gain,
        }),
    )?;
    if env.run.is_writer() {
        plot::write(&env.run.records(), &env.path("metrics.png"))?;
    }
    Ok(results)
}

/// Runs one stage and writes `metrics.png` after it (also when it stopped early: the plot shows
/// what was logged).
pub fn with_plot<T>(env: &mut Env, stage: impl FnOnce(&mut Env) -> Result<T>) -> Result<()> {
    let r = stage(env);
    if !matches!(r, Err(Error::Interrupted { .. })) && env.run.is_writer() {
        plot::write(&env.run.records(), &env.path("metrics.png"))?;
    }
    r.map(|_| ())
}

fn print_table(results: &[StageResult], env: &Env) {
    println!();
    println!(
        "{:<12} {:<16} {:>8} {:>8} {:>9}",
        "stage", "model", "top-1", "top-5", "seconds"
    );
    for r in results {
        let model = r
            .summary
            .get("model")
            .and_then(|m| m.as_str())
            .unwrap_or("-");
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2}%", 100.0 * v));
        let secs = r
            .summary
            .get("seconds")
            .and_then(|s| s.as_f64())
            .unwrap_or(0.0);
        println!(
            "{:<12} {:<16} {:>8} {:>8} {:>9.1}",
            r.stage,
            model,
            pct(r.top1),
            pct(r.top5),
            secs
        );
    }
    println!(
        "(dataset {}, {} test images; outputs in {})",
        env.cfg.dataset,
        env.splits.test.len(),
        env.run.path().display()
    );
}
