//! `metrics.png`: training loss per stage (left, each stage scaled to its own range along a
//! shared step axis) and test top-1 of each evaluating stage (right, bars), drawn directly into
//! an RGB buffer so the trainer needs no plotting library. Colours by stage, named in a legend.

use crate::{Error, Result};
use image::{Rgb, RgbImage};
use serde_json::Value;
use std::path::Path;

const W: u32 = 960;
const H: u32 = 420;
const STAGES: [(&str, [u8; 3]); 6] = [
    ("pretrain", [31, 119, 180]),
    ("finetune", [255, 127, 14]),
    ("distill", [44, 160, 44]),
    ("linear-eval", [148, 103, 189]),
    ("supervised", [214, 39, 40]),
    ("eval", [127, 127, 127]),
];

/// 3x5 glyphs (rows of 3 bits) for the letters and digits the labels use.
fn glyph(c: char) -> [u8; 5] {
    match c.to_ascii_uppercase() {
        'A' => [2, 5, 7, 5, 5],
        'B' => [6, 5, 6, 5, 6],
        'C' => [3, 4, 4, 4, 3],
        'D' => [6, 5, 5, 5, 6],
        'E' => [7, 4, 6, 4, 7],
        'F' => [7, 4, 6, 4, 4],
        'I' => [7, 2, 2, 2, 7],
        'K' => [5, 5, 6, 5, 5],
        'L' => [4, 4, 4, 4, 7],
        'N' => [5, 7, 7, 7, 5],
        'O' => [2, 5, 5, 5, 2],
        'P' => [6, 5, 6, 4, 4],
        'R' => [6, 5, 6, 5, 5],
        'S' => [3, 4, 2, 1, 6],
        'T' => [7, 2, 2, 2, 2],
        'U' => [5, 5, 5, 5, 7],
        'V' => [5, 5, 5, 5, 2],
        'Z' => [7, 1, 2, 4, 7],
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '5' => [7, 4, 6, 1, 6],
        '-' => [0, 0, 7, 0, 0],
        ':' => [0, 2, 0, 2, 0],
        '%' => [5, 1, 2, 4, 5],
        _ => [0; 5],
    }
}

fn text(img: &mut RgbImage, x: u32, y: u32, s: &str, color: [u8; 3]) {
    const SCALE: u32 = 2;
    for (i, c) in s.chars().enumerate() {
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..3 {
                if bits >> (2 - col) & 1 == 1 {
                    for dy in 0..SCALE {
                        for dx in 0..SCALE {
                            let (px, py) = (
                                x + (i as u32 * 4 + col) * SCALE + dx,
                                y + row as u32 * SCALE + dy,
                            );
                            if px < W && py < H {
                                img.put_pixel(px, py, Rgb(color));
                            }
                        }
                    }
                }
            }
        }
    }
}

fn line(img: &mut RgbImage, (x0, y0): (f64, f64), (x1, y1): (f64, f64), color: [u8; 3]) {
    let n = ((x1 - x0).abs().max((y1 - y0).abs()) as usize).max(1);
    for i in 0..=n {
        let t = i as f64 / n as f64;
        let (x, y) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
        if x >= 0.0 && y >= 0.0 && (x as u32) < W && (y as u32) < H {
            img.put_pixel(x as u32, y as u32, Rgb(color));
        }
    }
}

fn frame(img: &mut RgbImage, x0: f64, y0: f64, x1: f64, y1: f64) {
    let grey = [90, 90, 90];
    for (a, b) in [
        ((x0, y0), (x1, y0)),
        ((x1, y0), (x1, y1)),
        ((x1, y1), (x0, y1)),
        ((x0, y1), (x0, y0)),
    ] {
        line(img, a, b, grey);
    }
    for k in 1..4 {
        let y = y0 + (y1 - y0) * k as f64 / 4.0;
        line(img, (x0, y), (x1, y), [225, 225, 225]);
    }
}

pub fn write(records: &[Value], path: &Path) -> Result<()> {
    let mut img = RgbImage::from_pixel(W, H, Rgb([255, 255, 255]));
    let (lx0, lx1, y0, y1) = (40.0, 560.0, 40.0, 380.0);
    frame(&mut img, lx0, y0, lx1, y1);
    text(&mut img, 40, 16, "LOSS", [0, 0, 0]);
    // Loss curves: each stage's own min..max over its share of the x axis (stages run in order).
    let curves: Vec<(usize, Vec<f64>)> = STAGES
        .iter()
        .enumerate()
        .map(|(si, (name, _))| {
            let v: Vec<f64> = records
                .iter()
                .filter(|r| r["stage"] == *name && r.get("eval").is_none())
                .filter_map(|r| r["loss"].as_f64())
                .filter(|l| l.is_finite())
                .collect();
            (si, v)
        })
        .filter(|(_, v)| v.len() > 1)
        .collect();
    let total: usize = curves.iter().map(|(_, v)| v.len()).sum::<usize>().max(1);
    let mut offset = 0usize;
    for (si, v) in &curves {
        let (lo, hi) = v
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        let span = (hi - lo).max(1e-12);
        let pt = |i: usize, l: f64| {
            (
                lx0 + (lx1 - lx0) * (offset + i) as f64 / total as f64,
                y1 - (y1 - y0) * (l - lo) / span,
            )
        };
        for i in 1..v.len() {
            line(&mut img, pt(i - 1, v[i - 1]), pt(i, v[i]), STAGES[*si].1);
        }
        offset += v.len();
    }
    // Top-1 bars of the evaluating stages, 0..100%.
    let (bx0, bx1) = (620.0, 920.0);
    frame(&mut img, bx0, y0, bx1, y1);
    text(&mut img, 620, 16, "TOP1 0-100%", [0, 0, 0]);
    let evals: Vec<(usize, f64)> = STAGES
        .iter()
        .enumerate()
        .filter_map(|(si, (name, _))| {
            records
                .iter()
                .rev()
                .find(|r| r["stage"] == *name && r.get("top1").is_some())
                .and_then(|r| r["top1"].as_f64())
                .map(|t| (si, t))
        })
        .collect();
    let bw = (bx1 - bx0) / (evals.len().max(1) as f64 * 1.5);
    for (k, (si, t)) in evals.iter().enumerate() {
        let x = bx0 + bw * (0.5 + 1.5 * k as f64);
        let top = y1 - (y1 - y0) * t.clamp(0.0, 1.0);
        for px in x as u32..(x + bw) as u32 {
            line(&mut img, (px as f64, top), (px as f64, y1), STAGES[*si].1);
        }
    }
    // kNN monitor of pretraining (top-1 per check, same 0..100% scale), a black line across.
    let knn: Vec<f64> = records
        .iter()
        .filter_map(|r| r.get("knn_top1").and_then(|v| v.as_f64()))
        .collect();
    if !knn.is_empty() {
        let pt = |i: usize, t: f64| {
            let x = bx0 + (bx1 - bx0) * (i as f64 + 0.5) / knn.len() as f64;
            (x, y1 - (y1 - y0) * t.clamp(0.0, 1.0))
        };
        for i in 1..knn.len() {
            line(&mut img, pt(i - 1, knn[i - 1]), pt(i, knn[i]), [0, 0, 0]);
        }
        for (i, &t) in knn.iter().enumerate() {
            let (x, y) = pt(i, t);
            frame(&mut img, x - 2.0, y - 2.0, x + 2.0, y + 2.0);
        }
        text(&mut img, 760, 16, "LINE: PRETRAIN KNN", [0, 0, 0]);
    }
    // Legend.
    for (k, (name, color)) in STAGES.iter().take(5).enumerate() {
        text(&mut img, 40 + k as u32 * 120, 396, name, *color);
    }
    let tmp = path.with_extension("png.tmp");
    img.save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|e| Error::Config(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
