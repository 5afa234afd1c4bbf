//! Raster drawing for `metrics.png`: everything is drawn at twice the output size and averaged
//! down, which anti-aliases lines; text is rendered from the bundled DejaVu Sans subset
//! (assets/fonts) with ab_glyph's coverage, blended into the background.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::{imageops, Rgb, RgbImage};

/// Supersampling factor.
const SS: f32 = 2.0;
static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-subset.ttf");

#[derive(Clone, Copy)]
pub enum Align {
    Left,
    Centre,
    Right,
}

pub struct Canvas {
    img: RgbImage,
    font: FontRef<'static>,
}

fn blend(img: &mut RgbImage, x: i64, y: i64, color: [u8; 3], alpha: f32) {
    if x < 0 || y < 0 || x >= img.width() as i64 || y >= img.height() as i64 {
        return;
    }
    let p = img.get_pixel_mut(x as u32, y as u32);
    for (c, &t) in p.0.iter_mut().zip(&color) {
        *c = (*c as f32 * (1.0 - alpha) + t as f32 * alpha).round() as u8;
    }
}

impl Canvas {
    /// A white canvas of `w` x `h` output pixels.
    pub fn new(w: u32, h: u32) -> Self {
        let (sw, sh) = ((w as f32 * SS) as u32, (h as f32 * SS) as u32);
        Canvas {
            img: RgbImage::from_pixel(sw, sh, Rgb([255, 255, 255])),
            font: FontRef::try_from_slice(FONT).expect("the bundled font parses"),
        }
    }

    /// A filled rectangle, output coordinates.
    pub fn rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, color: [u8; 3]) {
        let (xa, xb) = ((x0.min(x1) * SS) as i64, (x0.max(x1) * SS).ceil() as i64);
        let (ya, yb) = ((y0.min(y1) * SS) as i64, (y0.max(y1) * SS).ceil() as i64);
        for y in ya..yb {
            for x in xa..xb {
                blend(&mut self.img, x, y, color, 1.0);
            }
        }
    }

    /// A line `width` output pixels wide.
    pub fn line(&mut self, (x0, y0): (f32, f32), (x1, y1): (f32, f32), width: f32, color: [u8; 3]) {
        let (x0, y0, x1, y1) = (x0 * SS, y0 * SS, x1 * SS, y1 * SS);
        let n = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
        let r = (width * SS / 2.0).max(0.5);
        for i in 0..=n {
            let t = i as f32 / n as f32;
            let (cx, cy) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
            for y in (cy - r).floor() as i64..(cy + r).ceil() as i64 {
                for x in (cx - r).floor() as i64..(cx + r).ceil() as i64 {
                    blend(&mut self.img, x, y, color, 1.0);
                }
            }
        }
    }

    /// Width of `s` at `size` output pixels.
    pub fn text_width(&self, s: &str, size: f32) -> f32 {
        let f = self.font.as_scaled(PxScale::from(size * SS));
        s.chars().map(|c| f.h_advance(f.glyph_id(c))).sum::<f32>() / SS
    }

    /// Text with its baseline at `y`, aligned on `x`.
    pub fn text(&mut self, x: f32, y: f32, s: &str, size: f32, align: Align, color: [u8; 3]) {
        let w = self.text_width(s, size);
        let x0 = match align {
            Align::Left => x,
            Align::Centre => x - w / 2.0,
            Align::Right => x - w,
        };
        let font = self.font.clone();
        let f = font.as_scaled(PxScale::from(size * SS));
        let mut pen = x0 * SS;
        for c in s.chars() {
            let id = f.glyph_id(c);
            let g = id.with_scale_and_position(f.scale(), ab_glyph::point(pen, y * SS));
            pen += f.h_advance(id);
            if let Some(o) = font.outline_glyph(g) {
                let b = o.px_bounds();
                o.draw(|gx, gy, cov| {
                    let (px, py) = (b.min.x as i64 + gx as i64, b.min.y as i64 + gy as i64);
                    blend(&mut self.img, px, py, color, cov.min(1.0));
                });
            }
        }
    }

    /// The output-size image (a box filter over the supersampled one).
    pub fn finish(self) -> RgbImage {
        let (w, h) = (
            (self.img.width() as f32 / SS) as u32,
            (self.img.height() as f32 / SS) as u32,
        );
        imageops::resize(&self.img, w, h, imageops::FilterType::Triangle)
    }
}
