//! The table `--profile` prints: one step's time split by phase, by op and by layer.
//!
//! - Phases: a top-level range counts for the innermost phase range around it (itself, when it
//!   is one), or for the forward when it is a layer or an op outside any phase; the rest of the
//!   step is "other" (data loading, logging). The four sum to the step.
//! - Ops: every op range not inside another op range, by (name, phase); ops nested in an op (a
//!   backward node's kernels) count for the outer one. Each phase's time outside op ranges is a
//!   row of its own, "(outside ops)", so the rows sum to the step.
//! - Layers: self time of every module (its range less its child modules'), forward and the
//!   backward of the tape nodes it recorded.

use super::{Phase, Profile, What};
use std::collections::HashMap;
use std::fmt;

pub const OUTSIDE_OPS: &str = "(outside ops)";

#[derive(Clone, Debug, PartialEq)]
pub struct OpRow {
    pub name: String,
    pub phase: Phase,
    /// None for the "(outside ops)" rows.
    pub calls: Option<usize>,
    pub ns: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LayerRow {
    pub name: String,
    pub calls: usize,
    pub forward_ns: u64,
    pub backward_ns: u64,
}

impl LayerRow {
    pub fn total_ns(&self) -> u64 {
        self.forward_ns + self.backward_ns
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub total_ns: u64,
    pub synchronised: bool,
    /// Forward, backward, optimizer, other.
    pub phases: Vec<(Phase, u64)>,
    /// Longest first.
    pub ops: Vec<OpRow>,
    /// Longest first.
    pub layers: Vec<LayerRow>,
}

/// Layer rows printed; the rest are summed into one line.
const MAX_LAYER_ROWS: usize = 25;

impl Table {
    pub fn new(p: &Profile) -> Table {
        let ev = &p.events;
        // Parents precede children, so one forward pass fills each per-event property.
        let mut phase = Vec::with_capacity(ev.len());
        let mut in_op = Vec::with_capacity(ev.len());
        let mut layer_parent: Vec<Option<usize>> = Vec::with_capacity(ev.len());
        for e in ev {
            let parent = e.parent;
            phase.push(match (e.what, parent) {
                (What::Phase(ph), _) => ph,
                (_, Some(q)) => phase[q],
                (_, None) => Phase::Forward,
            });
            in_op.push(parent.is_some_and(|q| ev[q].what.is_op() || in_op[q]));
            layer_parent.push(parent.and_then(|q| match ev[q].what {
                What::Layer(_) => Some(q),
                _ => layer_parent[q],
            }));
        }

        let mut by_phase: HashMap<Phase, u64> = HashMap::new();
        for (i, e) in ev.iter().enumerate() {
            if e.parent.is_none() {
                *by_phase.entry(phase[i]).or_default() += e.duration();
            }
        }
        let covered: u64 = by_phase.values().sum();
        by_phase.insert(Phase::Other, p.total.saturating_sub(covered));

        let mut ops: HashMap<(String, Phase), (usize, u64)> = HashMap::new();
        let mut op_ns: HashMap<Phase, u64> = HashMap::new();
        for (i, e) in ev.iter().enumerate() {
            let name = match e.what {
                What::Op(name) => name.to_string(),
                What::Backward { op, .. } => format!("{op} backward"),
                _ => continue,
            };
            if in_op[i] {
                continue;
            }
            let row = ops.entry((name, phase[i])).or_default();
            row.0 += 1;
            row.1 += e.duration();
            *op_ns.entry(phase[i]).or_default() += e.duration();
        }
        let mut op_rows: Vec<OpRow> = ops
            .into_iter()
            .map(|((name, phase), (calls, ns))| OpRow {
                name,
                phase,
                calls: Some(calls),
                ns,
            })
            .collect();
        for ph in Phase::ALL {
            let outside = by_phase
                .get(&ph)
                .copied()
                .unwrap_or(0)
                .saturating_sub(op_ns.get(&ph).copied().unwrap_or(0));
            if outside > 0 {
                op_rows.push(OpRow {
                    name: OUTSIDE_OPS.into(),
                    phase: ph,
                    calls: None,
                    ns: outside,
                });
            }
        }
        op_rows.sort_by(|a, b| {
            b.ns.cmp(&a.ns)
                .then_with(|| a.name.cmp(&b.name))
                .then(a.phase.cmp(&b.phase))
        });

        let mut layers: Vec<LayerRow> = p
            .layers
            .iter()
            .map(|name| LayerRow {
                name: name.clone(),
                calls: 0,
                forward_ns: 0,
                backward_ns: 0,
            })
            .collect();
        let mut child_ns = vec![0u64; ev.len()];
        for (i, e) in ev.iter().enumerate() {
            if let (What::Layer(_), Some(q)) = (e.what, layer_parent[i]) {
                child_ns[q] += e.duration();
            }
        }
        for (i, e) in ev.iter().enumerate() {
            match e.what {
                What::Layer(l) => {
                    let row = &mut layers[l as usize];
                    row.calls += 1;
                    row.forward_ns += e.duration().saturating_sub(child_ns[i]);
                }
                What::Backward { layer: Some(l), .. } if !in_op[i] => {
                    layers[l as usize].backward_ns += e.duration();
                }
                _ => {}
            }
        }
        layers.retain(|r| r.calls > 0 || r.backward_ns > 0);
        layers.sort_by(|a, b| b.total_ns().cmp(&a.total_ns()).then(a.name.cmp(&b.name)));

        Table {
            total_ns: p.total,
            synchronised: p.synchronised,
            phases: Phase::ALL
                .iter()
                .map(|&ph| (ph, by_phase.get(&ph).copied().unwrap_or(0)))
                .collect(),
            ops: op_rows,
            layers,
        }
    }

    /// `ns` as a percentage of the step.
    pub fn percent(&self, ns: u64) -> f64 {
        if self.total_ns == 0 {
            0.0
        } else {
            100.0 * ns as f64 / self.total_ns as f64
        }
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "step: {:.3} ms{}",
            ms(self.total_ns),
            if self.synchronised {
                " (device synchronised at every range boundary: slower than an unprofiled step)"
            } else {
                ""
            }
        )?;
        writeln!(f)?;
        writeln!(f, "{:<10} {:>12} {:>9}", "phase", "ms", "% of step")?;
        for &(ph, ns) in &self.phases {
            writeln!(
                f,
                "{:<10} {:>12.3} {:>9.2}",
                ph.name(),
                ms(ns),
                self.percent(ns)
            )?;
        }
        writeln!(f)?;
        let w = self
            .ops
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .max(2);
        writeln!(
            f,
            "{:<w$} {:<10} {:>7} {:>12} {:>9}",
            "op", "phase", "calls", "total ms", "% of step"
        )?;
        for r in &self.ops {
            let calls = r.calls.map_or("-".to_string(), |c| c.to_string());
            writeln!(
                f,
                "{:<w$} {:<10} {:>7} {:>12.3} {:>9.2}",
                r.name,
                r.phase.name(),
                calls,
                ms(r.ns),
                self.percent(r.ns)
            )?;
        }
        if self.layers.is_empty() {
            return Ok(());
        }
        writeln!(f)?;
        let shown = &self.layers[..self.layers.len().min(MAX_LAYER_ROWS)];
        const LAYER: &str = "layer (self time)";
        let w = shown
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .max(LAYER.len());
        writeln!(
            f,
            "{:<w$} {:>7} {:>12} {:>12} {:>9}",
            LAYER, "calls", "forward ms", "backward ms", "% of step"
        )?;
        for r in shown {
            writeln!(
                f,
                "{:<w$} {:>7} {:>12.3} {:>12.3} {:>9.2}",
                r.name,
                r.calls,
                ms(r.forward_ns),
                ms(r.backward_ns),
                self.percent(r.total_ns())
            )?;
        }
        let rest = &self.layers[shown.len()..];
        if !rest.is_empty() {
            let ns: u64 = rest.iter().map(LayerRow::total_ns).sum();
            writeln!(
                f,
                "({} more layers: {:.3} ms, {:.2}% of step)",
                rest.len(),
                ms(ns),
                self.percent(ns)
            )?;
        }
        let all: u64 = self.layers.iter().map(LayerRow::total_ns).sum();
        write!(f, "layers cover {:.2}% of the step", self.percent(all))
    }
}
