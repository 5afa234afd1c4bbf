//! What `metrics.png` shows, as data (so tests can check it without reading pixels): one panel
//! per training stage (loss against step), the kNN monitor (top-1 against epoch), and the test
//! top-1 of each evaluated stage as labelled bars. Each stage's records are those of its latest
//! run in the metrics file (`run_id`), so a rerun replaces its curve instead of joining it.

use serde_json::Value;

pub const STAGES: [(&str, [u8; 3]); 6] = [
    ("pretrain", [31, 119, 180]),
    ("finetune", [255, 127, 14]),
    ("distill", [44, 160, 44]),
    ("linear-eval", [148, 103, 189]),
    ("supervised", [214, 39, 40]),
    ("eval", [127, 127, 127]),
];

#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub label: String,
    pub lo: f64,
    pub hi: f64,
    /// Position and label of each tick, lo..=hi.
    pub ticks: Vec<(f64, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// The stage, written under the bar.
    pub label: String,
    pub value: f64,
    /// The value, written on the bar.
    pub text: String,
    pub color: [u8; 3],
}

#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub points: Vec<(f64, f64)>,
    pub color: [u8; 3],
    /// Dots on the points (few, spaced points such as per-epoch checks).
    pub markers: bool,
    /// A bar chart instead of a curve (x is then unused).
    pub bars: Vec<Bar>,
}

/// A "nice" tick step (1, 2 or 5 x 10^k) giving about five intervals over `span`.
fn tick_step(span: f64) -> f64 {
    let raw = (span / 5.0).max(1e-12);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// An axis over lo..hi widened to whole ticks, labelled with as many decimals as the step needs.
pub fn axis(label: &str, lo: f64, hi: f64, integer: bool) -> Axis {
    let (lo, hi) = if hi - lo < 1e-9 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let mut step = tick_step(hi - lo);
    if integer {
        step = step.max(1.0).round();
    }
    let (a, b) = ((lo / step).floor() as i64, (hi / step).ceil() as i64);
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let ticks = (a..=b)
        .map(|k| {
            let v = k as f64 * step;
            (v, format!("{v:.decimals$}"))
        })
        .collect();
    Axis {
        label: label.into(),
        lo: a as f64 * step,
        hi: b as f64 * step,
        ticks,
    }
}

/// For each stage, its records from its latest run.
fn latest<'a>(records: &'a [Value], stage: &str) -> Vec<&'a Value> {
    let mine: Vec<&Value> = records.iter().filter(|r| r["stage"] == stage).collect();
    let run = mine.iter().map(|r| r["run_id"].as_u64().unwrap_or(0)).max();
    mine.into_iter()
        .filter(|r| Some(r["run_id"].as_u64().unwrap_or(0)) == run)
        .collect()
}

fn range(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    })
}

fn loss_name(stage: &str) -> &'static str {
    match stage {
        "pretrain" => "NT-Xent loss",
        "distill" => "distillation loss",
        _ => "cross-entropy loss",
    }
}

pub fn layout(records: &[Value]) -> Vec<Panel> {
    let mut panels = Vec::new();
    let mut bars = Vec::new();
    for (stage, color) in STAGES {
        let recs = latest(records, stage);
        let points: Vec<(f64, f64)> = recs
            .iter()
            .filter(|r| r.get("eval").is_none() && r.get("lr").is_some())
            .filter_map(|r| Some((r["step"].as_f64()?, r["loss"].as_f64()?)))
            .filter(|(_, l)| l.is_finite())
            .collect();
        if !points.is_empty() {
            let (x0, x1) = range(points.iter().map(|p| p.0));
            let (y0, y1) = range(points.iter().map(|p| p.1));
            panels.push(Panel {
                title: format!("{stage}: training loss"),
                x: axis("step", x0.min(0.0), x1, true),
                y: axis(loss_name(stage), y0, y1, false),
                points,
                color,
                markers: false,
                bars: Vec::new(),
            });
        }
        let knn: Vec<(f64, f64)> = recs
            .iter()
            .filter_map(|r| Some((r["epoch"].as_f64()? + 1.0, 100.0 * r["knn_top1"].as_f64()?)))
            .collect();
        if !knn.is_empty() {
            let (x0, x1) = range(knn.iter().map(|p| p.0));
            let (y0, y1) = range(knn.iter().map(|p| p.1));
            panels.push(Panel {
                title: format!("{stage}: kNN monitor (k = 200)"),
                x: axis("epoch", x0.min(1.0), x1, true),
                y: axis("kNN top-1 (%)", y0.max(0.0), y1.min(100.0), false),
                points: knn,
                color: [0, 0, 0],
                markers: true,
                bars: Vec::new(),
            });
        }
        if let Some(t) = recs.iter().rev().find_map(|r| r.get("top1")?.as_f64()) {
            bars.push(Bar {
                label: stage.into(),
                value: 100.0 * t,
                text: format!("{:.1}%", 100.0 * t),
                color,
            });
        }
    }
    if !bars.is_empty() {
        panels.push(Panel {
            title: "test top-1 per stage".into(),
            x: Axis {
                label: String::new(),
                lo: 0.0,
                hi: bars.len() as f64,
                ticks: Vec::new(),
            },
            y: axis("top-1 (%)", 0.0, 100.0, false),
            points: Vec::new(),
            color: [0, 0, 0],
            markers: false,
            bars,
        });
    }
    panels
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(run: u64, stage: &str, step: u64, loss: f64) -> Value {
        json!({ "run_id": run, "stage": stage, "epoch": 0, "step": step, "loss": loss, "lr": 0.1 })
    }

    #[test]
    fn one_panel_per_stage_then_knn_then_labelled_bars() {
        let mut r: Vec<Value> = (1..=20)
            .map(|s| step(1, "pretrain", s * 10, 5.0 - s as f64 * 0.1))
            .collect();
        r.push(
            json!({ "run_id": 1, "stage": "pretrain", "epoch": 0, "step": 100, "knn_top1": 0.31 }),
        );
        r.push(
            json!({ "run_id": 1, "stage": "pretrain", "epoch": 1, "step": 200, "knn_top1": 0.42 }),
        );
        r.extend((1..=5).map(|s| step(1, "finetune", s, 2.0 / s as f64)));
        r.push(json!({ "run_id": 1, "stage": "finetune", "step": null, "eval": "test", "loss": 1.0, "top1": 0.8766, "top5": 0.99 }));
        let p = layout(&r);
        let titles: Vec<&str> = p.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "pretrain: training loss",
                "pretrain: kNN monitor (k = 200)",
                "finetune: training loss",
                "test top-1 per stage"
            ]
        );
        // Loss against step, axes widened to whole ticks.
        let pre = &p[0];
        assert_eq!(
            (pre.x.label.as_str(), pre.y.label.as_str()),
            ("step", "NT-Xent loss")
        );
        assert_eq!((pre.x.lo, pre.x.hi), (0.0, 200.0));
        let xt: Vec<&str> = pre.x.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(xt, ["0", "50", "100", "150", "200"]);
        assert_eq!((pre.y.lo, pre.y.hi), (3.0, 5.0));
        assert_eq!(pre.y.ticks[1].1, "3.5");
        // kNN in percent against epoch (1-based).
        assert_eq!(p[1].points, vec![(1.0, 31.0), (2.0, 42.0)]);
        assert_eq!(p[1].x.label, "epoch");
        // Bars: value on the bar, stage under it, 0-100 %.
        let bars = &p[3];
        assert_eq!(bars.bars.len(), 1);
        assert_eq!(
            (bars.bars[0].label.as_str(), bars.bars[0].text.as_str()),
            ("finetune", "87.7%")
        );
        assert_eq!(
            (bars.y.lo, bars.y.hi, bars.y.label.as_str()),
            (0.0, 100.0, "top-1 (%)")
        );
    }

    #[test]
    fn a_rerun_replaces_its_stage_curve() {
        let mut r: Vec<Value> = (1..=4).map(|s| step(1, "pretrain", s, 9.0)).collect();
        r.extend((1..=3).map(|s| step(2, "pretrain", s, 1.0)));
        let p = layout(&r);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].points, vec![(1.0, 1.0), (2.0, 1.0), (3.0, 1.0)]);
    }

    #[test]
    fn ticks_use_nice_steps_and_enough_decimals() {
        let a = axis("loss", 0.0213, 0.0871, false);
        assert!(a.lo <= 0.0213 && a.hi >= 0.0871);
        let labels: Vec<&str> = a.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0.02", "0.04", "0.06", "0.08", "0.10"]);
        let flat = axis("loss", 2.0, 2.0, false);
        assert!(flat.lo < 2.0 && flat.hi > 2.0);
    }
}
