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
