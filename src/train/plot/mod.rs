//! `metrics.png`: the panels of `layout` in a grid, each with its own title, axes, tick labels
//! and axis names; the top-1 bars carry their value on top and their stage's name below. Drawn
//! into an RGB buffer (`draw`) so the trainer needs no plotting library.

pub mod draw;
pub mod layout;

use crate::{Error, Result};
use draw::{Align, Canvas};
use layout::Panel;
use serde_json::Value;
use std::path::Path;

const PW: f32 = 420.0;
const PH: f32 = 300.0;
/// Panel margins: left (tick labels), right, top (title, axis name), bottom (ticks, x name).
const ML: f32 = 64.0;
const MR: f32 = 20.0;
const MT: f32 = 52.0;
const MB: f32 = 50.0;
const COLS: usize = 3;
const INK: [u8; 3] = [30, 30, 30];
const GRID: [u8; 3] = [228, 228, 228];

fn draw_panel(c: &mut Canvas, p: &Panel, ox: f32, oy: f32) {
    let (x0, x1, y0, y1) = (ox + ML, ox + PW - MR, oy + MT, oy + PH - MB);
    let sx = |v: f64| x0 + (x1 - x0) * ((v - p.x.lo) / (p.x.hi - p.x.lo)) as f32;
    let sy = |v: f64| y1 - (y1 - y0) * ((v - p.y.lo) / (p.y.hi - p.y.lo)) as f32;
    c.text(ox + ML, oy + 20.0, &p.title, 15.0, Align::Left, INK);
    c.text(x0, y0 - 8.0, &p.y.label, 12.0, Align::Left, INK);
    for (v, label) in &p.y.ticks {
        let y = sy(*v);
        c.line((x0, y), (x1, y), 1.0, GRID);
        c.line((x0 - 4.0, y), (x0, y), 1.0, INK);
        c.text(x0 - 7.0, y + 4.0, label, 11.0, Align::Right, INK);
    }
    for (v, label) in &p.x.ticks {
        let x = sx(*v);
        c.line((x, y1), (x, y1 + 4.0), 1.0, INK);
        c.text(x, y1 + 17.0, label, 11.0, Align::Centre, INK);
    }
    if !p.x.label.is_empty() {
        c.text(
            (x0 + x1) / 2.0,
            y1 + 36.0,
            &p.x.label,
            12.0,
            Align::Centre,
            INK,
        );
    }
    for w in p.points.windows(2) {
        c.line(
            (sx(w[0].0), sy(w[0].1)),
            (sx(w[1].0), sy(w[1].1)),
            1.5,
            p.color,
        );
    }
    if p.markers || p.points.len() == 1 {
        for &(x, y) in &p.points {
            let (px, py) = (sx(x), sy(y));
            c.rect(px - 3.0, py - 3.0, px + 3.0, py + 3.0, p.color);
        }
    }
    for (k, b) in p.bars.iter().enumerate() {
        let (l, r) = (sx(k as f64 + 0.15), sx(k as f64 + 0.85));
        let top = sy(b.value.clamp(p.y.lo, p.y.hi));
        c.rect(l, top, r, y1, b.color);
        c.text((l + r) / 2.0, top - 5.0, &b.text, 12.0, Align::Centre, INK);
        c.text((l + r) / 2.0, y1 + 17.0, &b.label, 11.0, Align::Centre, INK);
    }
    c.line((x0, y0), (x0, y1), 1.0, INK);
    c.line((x0, y1), (x1, y1), 1.0, INK);
}

/// The figure of `panels` (at least one cell, so an empty run still gives a readable image).
pub fn render(panels: &[Panel]) -> image::RgbImage {
    let cols = panels.len().clamp(1, COLS);
    let rows = panels.len().div_ceil(COLS).max(1);
    let mut c = Canvas::new((cols as f32 * PW) as u32, (rows as f32 * PH) as u32);
    if panels.is_empty() {
        c.text(
            PW / 2.0,
            PH / 2.0,
            "no metrics logged yet",
            15.0,
            Align::Centre,
            INK,
        );
    }
    for (i, p) in panels.iter().enumerate() {
        let (col, row) = ((i % COLS) as f32, (i / COLS) as f32);
        draw_panel(&mut c, p, col * PW, row * PH);
    }
    c.finish()
}

/// Writes the plot of `records` to `path` (through a temporary file: never half-written).
pub fn write(records: &[Value], path: &Path) -> Result<()> {
    let img = render(&layout::layout(records));
    let tmp = path.with_extension("png.tmp");
    img.save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|e| Error::Config(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
