//! CPU convolution in NHWC with KRSC weights: im2col + GEMM per image, images in parallel.
//! A 1x1 stride-1 unpadded convolution reads the input directly as the GEMM operand.

use super::Conv2dKernels;
use super::Geometry;
use crate::ops::backend::Cpu;
use crate::ops::matmul::gemm::{gemm, Layout};
use crate::{float_dispatch, Float, Result, Tensor};
use rayon::prelude::*;

/// Copies the receptive fields of one image's group `g` into `cols` (rows: output pixels,
/// columns: (kh, kw, c) — the weight's own order).
fn im2col<T: Float>(x: &[T], g: &Geometry, group: usize, cols: &mut [T]) {
    let (cg, k) = (g.cin_g, g.k());
    for oh in 0..g.ho {
        for ow in 0..g.wo {
            let row = &mut cols[(oh * g.wo + ow) * k..(oh * g.wo + ow + 1) * k];
            for kh in 0..g.kh {
                let ih = (oh * g.sh + kh * g.dh) as isize - g.ph as isize;
                for kw in 0..g.kw {
                    let iw = (ow * g.sw + kw * g.dw) as isize - g.pw as isize;
                    let dst = &mut row[(kh * g.kw + kw) * cg..(kh * g.kw + kw + 1) * cg];
                    if ih < 0 || iw < 0 || ih >= g.h as isize || iw >= g.w as isize {
                        dst.fill(T::ZERO);
                    } else {
                        let src = (ih as usize * g.w + iw as usize) * g.cin + group * cg;
                        dst.copy_from_slice(&x[src..src + cg]);
                    }
                }
            }
        }
    }
}

/// Adds the columns back onto the image (the adjoint of `im2col`).
fn col2im<T: Float>(cols: &[T], g: &Geometry, group: usize, dx: &mut [T]) {
    let (cg, k) = (g.cin_g, g.k());
    for oh in 0..g.ho {
        for ow in 0..g.wo {
            let row = &cols[(oh * g.wo + ow) * k..(oh * g.wo + ow + 1) * k];
            for kh in 0..g.kh {
                let ih = (oh * g.sh + kh * g.dh) as isize - g.ph as isize;
                if ih < 0 || ih >= g.h as isize {
                    continue;
                }
                for kw in 0..g.kw {
                    let iw = (ow * g.sw + kw * g.dw) as isize - g.pw as isize;
                    if iw < 0 || iw >= g.w as isize {
                        continue;
                    }
                    let src = &row[(kh * g.kw + kw) * cg..(kh * g.kw + kw + 1) * cg];
                    let d = (ih as usize * g.w + iw as usize) * g.cin + group * cg;
                    for (o, &v) in dx[d..d + cg].iter_mut().zip(src) {
                        *o += v;
                    }
                }
            }
        }
    }
}

/// Images per task: enough GEMM rows (output pixels) that packing the weights is amortised,
/// while leaving a few tasks per thread for load balance.
fn images_per_chunk(g: &Geometry) -> usize {
    const TARGET_ROWS: usize = 4096;
    let by_rows = (TARGET_ROWS / (g.ho * g.wo).max(1)).max(1);
    let by_balance = g.n.div_ceil(2 * rayon::current_num_threads()).max(1);
    by_rows.min(by_balance)
}

/// The GEMM operand holding the receptive fields of images `images` for group `group`, one row
/// per output pixel: the input itself for pointwise convolutions, else an im2col buffer.
fn fields<'a, T: Float>(
    x: &'a [T],
    g: &Geometry,
    images: usize,
    group: usize,
    buf: &'a mut Vec<T>,
) -> (&'a [T], Layout) {
    let rows = g.ho * g.wo;
    if g.is_pointwise() {
        (
            x,
            Layout::row_major(images * rows, g.cin_g)
                .with_rs(g.cin)
                .at(group * g.cin_g),
        )
    } else {
        let (img_in, k) = (g.h * g.w * g.cin, g.k());
        buf.resize(images * rows * k, T::ZERO);
        for i in 0..images {
            im2col(
                &x[i * img_in..(i + 1) * img_in],
                g,
                group,
                &mut buf[i * rows * k..(i + 1) * rows * k],
            );
        }
        (&buf[..], Layout::row_major(images * rows, k))
    }
}

pub fn forward<T: Float>(x: &Tensor, w: &Tensor, g: &Geometry) -> Result<Tensor> {
    let (xs, ws) = (x.cpu_slice::<T>("conv2d")?, w.cpu_slice::<T>("conv2d")?);
    let (img_in, img_out) = (g.h * g.w * g.cin, g.ho * g.wo * g.cout);
    let chunk = images_per_chunk(g);
    let mut out = vec![T::ZERO; g.n * img_out];
    out.par_chunks_mut((chunk * img_out).max(1))
        .enumerate()
        .for_each_init(Vec::new, |buf, (c, y)| {
            let images = y.len() / img_out.max(1);
            let xi = &xs[c * chunk * img_in..(c * chunk + images) * img_in];
            for group in 0..g.groups {
                let (a, la) = fields(xi, g, images, group, buf);
                let lb = Layout::row_major(g.cout_g, g.k())
                    .at(group * g.cout_g * g.k())
                    .t();
                let lc = Layout::row_major(images * g.ho * g.wo, g.cout_g)
                    .with_rs(g.cout)
                    .at(group * g.cout_g);
                gemm(T::ONE, a, la, ws, lb, T::ZERO, y, lc);
            }
        });
    Tensor::from_vec(out, &[g.n, g.ho, g.wo, g.cout])
}

pub fn backward_input<T: Float>(dy: &Tensor, w: &Tensor, g: &Geometry) -> Result<Tensor> {
    let (dys, ws) = (
        dy.cpu_slice::<T>("conv2d_backward_input")?,
        w.cpu_slice::<T>("conv2d_backward_input")?,
    );
    let (img_in, img_out) = (g.h * g.w * g.cin, g.ho * g.wo * g.cout);
    let chunk = images_per_chunk(g);
    let rows = g.ho * g.wo;
    let k = g.k();
    let mut dx = vec![T::ZERO; g.n * img_in];
    dx.par_chunks_mut((chunk * img_in).max(1))
        .enumerate()
        .for_each_init(Vec::new, |buf, (c, dxi)| {
            let images = dxi.len() / img_in.max(1);
            let dyi = &dys[c * chunk * img_out..(c * chunk + images) * img_out];
            for group in 0..g.groups {
                let la = Layout::row_major(images * rows, g.cout_g)
                    .with_rs(g.cout)
                    .at(group * g.cout_g);
                let lb = Layout::row_major(g.cout_g, k).at(group * g.cout_g * k);
                if g.is_pointwise() {
                    // dx[:, group] = dy_g · W_g, written straight into the images.
                    let lc = Layout::row_major(images * rows, g.cin_g)
                        .with_rs(g.cin)
                        .at(group * g.cin_g);
                    gemm(T::ONE, dyi, la, ws, lb, T::ZERO, dxi, lc);
                } else {
                    buf.resize(images * rows * k, T::ZERO);
                    gemm(
                        T::ONE,
                        dyi,
                        la,
                        ws,
                        lb,
                        T::ZERO,
                        buf,
                        Layout::row_major(images * rows, k),
                    );
                    for i in 0..images {
                        col2im(
                            &buf[i * rows * k..(i + 1) * rows * k],
                            g,
                            group,
                            &mut dxi[i * img_in..(i + 1) * img_in],
                        );
                    }
                }
            }
        });
    Tensor::from_vec(dx, &[g.n, g.h, g.w, g.cin])
}

pub fn backward_weight<T: Float>(x: &Tensor, dy: &Tensor, g: &Geometry) -> Result<Tensor> {
    let (xs, dys) = (
        x.cpu_slice::<T>("conv2d_backward_weight")?,
        dy.cpu_slice::<T>("conv2d_backward_weight")?,
    );
    let (img_in, img_out) = (g.h * g.w * g.cin, g.ho * g.wo * g.cout);
    let wlen = g.cout * g.k();
    let rows = g.ho * g.wo;
    let chunk = images_per_chunk(g);
    // Each chunk of images gets its own weight gradient; the partials are added in chunk order,
    // so the result does not depend on thread scheduling (bit-for-bit reproducible training).
    let partials: Vec<Vec<T>> = (0..g.n.div_ceil(chunk))
        .into_par_iter()
        .map_init(Vec::new, |buf, c| {
            let mut acc = vec![T::ZERO; wlen];
            let images = chunk.min(g.n - c * chunk);
            let xi = &xs[c * chunk * img_in..(c * chunk + images) * img_in];
            let dyi = &dys[c * chunk * img_out..(c * chunk + images) * img_out];
            for group in 0..g.groups {
                let (b, lb) = fields(xi, g, images, group, buf);
                let la = Layout::row_major(images * rows, g.cout_g)
                    .with_rs(g.cout)
                    .at(group * g.cout_g)
                    .t();
                let lc = Layout::row_major(g.cout_g, g.k()).at(group * g.cout_g * g.k());
                gemm(T::ONE, dyi, la, b, lb, T::ZERO, &mut acc, lc);
            }
            acc
        })
        .collect();
    let mut dw = vec![T::ZERO; wlen];
    for p in partials {
        for (a, v) in dw.iter_mut().zip(p) {
            *a += v;
        }
    }
    Tensor::from_vec(dw, &[g.cout, g.kh, g.kw, g.cin_g])
}

impl Conv2dKernels for Cpu {
    fn conv2d_forward(x: &Tensor, w: &Tensor, g: &Geometry) -> Result<Tensor> {
        float_dispatch!("conv2d", x.dtype(), forward(x, w, g))
    }
    fn conv2d_backward_input(dy: &Tensor, w: &Tensor, g: &Geometry) -> Result<Tensor> {
        float_dispatch!(
            "conv2d_backward_input",
            dy.dtype(),
            backward_input(dy, w, g)
        )
    }
    fn conv2d_backward_weight(x: &Tensor, dy: &Tensor, g: &Geometry) -> Result<Tensor> {
        float_dispatch!(
            "conv2d_backward_weight",
            x.dtype(),
            backward_weight(x, dy, g)
        )
    }
}
