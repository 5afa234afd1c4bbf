//! What `--resume` may continue: the resolved settings a stage's result depends on are saved
//! with its state, and a resume that changes any of them is refused, naming each key with both
//! values (a mixed schedule is neither run). A finished stage keeps its results on resume.

use super::config::Config;
use super::{common::Env, StageResult};
use crate::{Error, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// The config section of a stage.
fn section(stage: &str) -> &'static str {
    match stage {
        "pretrain" => "pretrain",
        "distill" => "distill",
        "linear-eval" => "linear_eval",
        _ => "finetune",
    }
}

/// Keys that change how a step runs but not what it computes: memory and parallel strategy.
const EXECUTION_ONLY: [&str; 3] = ["micro_batch", "world_size", "cuda_graph"];

/// The settings `stage`'s trajectory depends on, flattened to `section.key` → value (the seed
/// is checked by `state::load`).
pub fn fingerprint(cfg: &Config, stage: &str) -> Value {
    let all = serde_json::to_value(cfg).unwrap_or_default();
    let mut out = Map::new();
    for k in [
        "model",
        "dataset",
        "data_dir",
        "image_size",
        "synthetic_train",
        "precision",
    ] {
        out.insert(k.into(), all[k].clone());
    }
    if stage == "distill" {
        out.insert("student_model".into(), all["student_model"].clone());
    }
    let s = section(stage);
    if let Some(m) = all[s].as_object() {
        for (k, v) in m
            .iter()
            .filter(|(k, _)| !EXECUTION_ONLY.contains(&k.as_str()))
        {
            out.insert(format!("{s}.{k}"), v.clone());
        }
    }
    Value::Object(out)
}

/// Refuses to continue a state saved under other settings; older states without saved settings
/// are accepted (their seed is still checked on load).
pub fn check(path: &Path, cfg: &Config, stage: &str) -> Result<()> {
    let Some(saved) = position(path)?.config else {
        eprintln!(
            "warning: {}: no saved settings (written by an older version); only the seed is checked",
            path.display()
        );
        return Ok(());
    };
    let now = fingerprint(cfg, stage);
    let (Some(saved), Some(now)) = (saved.as_object(), now.as_object()) else {
        return Ok(());
    };
    let mut keys: Vec<&String> = saved.keys().chain(now.keys()).collect();
    keys.sort();
    keys.dedup();
    let changed: Vec<String> = keys
        .into_iter()
        .filter(|k| saved.get(*k) != now.get(*k))
        .map(|k| {
            let show = |v: Option<&Value>| v.map_or("(absent)".to_string(), |v| v.to_string());
            format!("{k} was {}, now {}", show(saved.get(k)), show(now.get(k)))
        })
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    Err(Error::Checkpoint {
        path: path.to_path_buf(),
        msg: format!(
            "--resume would continue this {stage} state under other settings: {}. Resume \
             with the original settings, or use a new --out to start over",
            changed.join("; ")
        ),
    })
}

/// On `--resume` of a stage whose state says all `epochs` are done and whose summary entry is
/// complete, that result, so the stage is not redone and its summary not overwritten.
pub fn finished(env: &Env, stage: &'static str, epochs: usize) -> Result<Option<StageResult>> {
    let path = env.path(&format!("{stage}.state.safetensors"));
    if !env.resume || !path.exists() {
        return Ok(None);
    }
    check(&path, &env.cfg, stage)?;
    let pos = position(&path)?;
    let summary: Value = std::fs::read_to_string(env.path("summary.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let entry = &summary[stage];
    if pos.epochs_done < epochs || entry["complete"] != Value::Bool(true) {
        return Ok(None);
    }
    println!("{stage}: already complete ({epochs} epochs); keeping its results");
    Ok(Some(StageResult {
        stage,
        summary: entry.clone(),
        top1: entry["top1"].as_f64(),
        top5: entry["top5"].as_f64(),
        complete: true,
    }))
}

/// The position saved in a state file.
fn position(path: &Path) -> Result<super::state::Position> {
    crate::checkpoint::read_metadata(path)?
        .get("position")
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| Error::Checkpoint {
            path: path.to_path_buf(),
            msg: "not a training-state file (no position)".into(),
        })
}
