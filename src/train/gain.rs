//! The pipeline's headline: how many points of test top-1 pretraining on the unlabelled images
//! adds over the supervised baseline trained on the same labelled images.

use super::StageResult;
use serde_json::{json, Value};

fn top1(results: &[StageResult], stage: &str) -> Option<f64> {
    results.iter().find(|r| r.stage == stage)?.top1
}

/// Gains in points (percentage points of top-1) of fine-tuning and of distillation over the
/// supervised baseline, where both sides ran.
pub fn gains(results: &[StageResult]) -> Value {
    let base = top1(results, "supervised");
    let gain = |stage| Some(100.0 * (top1(results, stage)? - base?));
    json!({ "finetune": gain("finetune"), "distill": gain("distill") })
}

/// Prints the gains under the table.
pub fn print(results: &[StageResult]) -> Value {
    let g = gains(results);
    let fmt = |v: &Value| v.as_f64().map_or("-".into(), |p| format!("{p:+.2}"));
    println!(
        "gain over the supervised baseline (same labelled images): pretrain + fine-tune {} points, + distillation {} points",
        fmt(&g["finetune"]),
        fmt(&g["distill"])
    );
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(stage: &'static str, top1: Option<f64>) -> StageResult {
        StageResult {
            stage,
            summary: json!({}),
            top1,
            top5: None,
            complete: true,
        }
    }

    #[test]
    fn gains_are_differences_in_points() {
        let rs = [
            r("pretrain", None),
            r("finetune", Some(0.55)),
            r("distill", Some(0.57)),
            r("supervised", Some(0.40)),
        ];
        let g = gains(&rs);
        assert!((g["finetune"].as_f64().unwrap() - 15.0).abs() < 1e-9);
        assert!((g["distill"].as_f64().unwrap() - 17.0).abs() < 1e-9);
        assert!(gains(&rs[..3])["finetune"].is_null());
    }
}
