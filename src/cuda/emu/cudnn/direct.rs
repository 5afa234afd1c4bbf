//! The emulated cuDNN's own numerics: direct convolution over NHWC data and KRSC filters,
//! summed in f64, written as the definitions read (no im2col, no GEMM). It shares no code with
//! the CPU backend's convolution (`ops::conv2d::cpu`, im2col + GEMM), so a parity test on the
//! emulated device compares two independent computations, and the CUDA runtime's floor does not
//! import the ops above it.

use rayon::prelude::*;

/// One convolution's sizes, read from the cuDNN descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub ho: usize,
    pub wo: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub dh: usize,
    pub dw: usize,
    pub groups: usize,
    pub cin_g: usize,
    pub cout_g: usize,
}

impl Geometry {
    /// Terms of each output sum of the forward pass.
    pub fn k(&self) -> usize {
        self.kh * self.kw * self.cin_g
    }
    /// Multiply-accumulates of the forward pass.
    pub fn macs(&self) -> u64 {
        (self.n * self.ho * self.wo * self.cout) as u64 * self.k() as u64
    }
    /// The input row of output row `o` and filter row `r` (None in the padding).
    fn in_row(&self, o: usize, r: usize) -> Option<usize> {
        (o * self.sh + r * self.dh)
            .checked_sub(self.ph)
            .filter(|&i| i < self.h)
    }
    fn in_col(&self, o: usize, s: usize) -> Option<usize> {
        (o * self.sw + s * self.dw)
            .checked_sub(self.pw)
            .filter(|&i| i < self.w)
    }
}

/// Adds `a · x` to `y` element by element. The loops below are written around it: a sum kept
/// in one variable is a chain of dependent f64 adds (one per adder latency), while this loop's
/// adds are independent and vectorise. (`simclr bench --device cuda-emu`, r18_0.25x_sk1, batch
/// 4, 32 px, 3 steps, under perf: the three directions took 12.4 s of CPU time, 4.4 s after.)
fn axpy(y: &mut [f64], a: f64, x: &[f64]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// y[n, oh, ow, k] = Σ_{r, s, c} x[n, ih, iw, group(k)·cin_g + c] · w[k, r, s, c].
pub fn forward(x: &[f64], w: &[f64], g: &Geometry) -> Vec<f64> {
    // The filter as [r, s, c, k]: for one input value, the outputs it feeds are contiguous.
    let mut wt = vec![0.0; w.len()];
    for k in 0..g.cout {
        for tap in 0..g.kh * g.kw {
            for c in 0..g.cin_g {
                wt[(tap * g.cin_g + c) * g.cout + k] = w[(k * g.kh * g.kw + tap) * g.cin_g + c];
            }
        }
    }
    let mut y = vec![0.0; g.n * g.ho * g.wo * g.cout];
    y.par_chunks_mut(g.cout.max(1))
        .enumerate()
        .for_each(|(pix, out)| {
            let (n, oh, ow) = (pix / (g.ho * g.wo), pix / g.wo % g.ho, pix % g.wo);
            for r in 0..g.kh {
                let Some(ih) = g.in_row(oh, r) else { continue };
                for s in 0..g.kw {
                    let Some(iw) = g.in_col(ow, s) else { continue };
                    let xi = ((n * g.h + ih) * g.w + iw) * g.cin;
                    let tap = r * g.kw + s;
                    for (grp, out) in out.chunks_mut(g.cout_g.max(1)).enumerate() {
                        for c in 0..g.cin_g {
                            let row = (tap * g.cin_g + c) * g.cout + grp * g.cout_g;
                            axpy(out, x[xi + grp * g.cin_g + c], &wt[row..row + g.cout_g]);
                        }
                    }
                }
            }
        });
    y
}

/// dx[n, ih, iw, ci] = Σ over the outputs (oh, ow, k of ci's group) and taps (r, s) that read
/// input (ih, iw): dy[n, oh, ow, k] · w[k, r, s, ci − group·cin_g].
pub fn backward_data(dy: &[f64], w: &[f64], g: &Geometry) -> Vec<f64> {
    let mut dx = vec![0.0; g.n * g.h * g.w * g.cin];
    dx.par_chunks_mut(g.cin.max(1))
        .enumerate()
        .for_each(|(pix, out)| {
            let (n, ih, iw) = (pix / (g.h * g.w), pix / g.w % g.h, pix % g.w);
            for r in 0..g.kh {
                // oh·sh = ih + ph − r·dh, when that is a whole output row.
                let Some(t) = (ih + g.ph).checked_sub(r * g.dh) else {
                    continue;
                };
                if t % g.sh != 0 || t / g.sh >= g.ho {
                    continue;
                }
                let oh = t / g.sh;
                for s in 0..g.kw {
                    let Some(u) = (iw + g.pw).checked_sub(s * g.dw) else {
                        continue;
                    };
                    if u % g.sw != 0 || u / g.sw >= g.wo {
                        continue;
                    }
                    let ow = u / g.sw;
                    let yi = ((n * g.ho + oh) * g.wo + ow) * g.cout;
                    for (grp, out) in out.chunks_mut(g.cin_g.max(1)).enumerate() {
                        for k in grp * g.cout_g..(grp + 1) * g.cout_g {
                            let wi = ((k * g.kh + r) * g.kw + s) * g.cin_g;
                            axpy(out, dy[yi + k], &w[wi..wi + g.cin_g]);
                        }
                    }
                }
            }
        });
    dx
}

/// dw[k, r, s, c] = Σ_{n, oh, ow} dy[n, oh, ow, k] · x[n, ih, iw, group(k)·cin_g + c].
pub fn backward_filter(x: &[f64], dy: &[f64], g: &Geometry) -> Vec<f64> {
    let mut dw = vec![0.0; g.cout * g.kh * g.kw * g.cin_g];
    dw.par_chunks_mut((g.kh * g.kw * g.cin_g).max(1))
        .enumerate()
        .for_each(|(k, out)| {
            let c0 = k / g.cout_g * g.cin_g;
            for n in 0..g.n {
                for oh in 0..g.ho {
                    for ow in 0..g.wo {
                        let d = dy[((n * g.ho + oh) * g.wo + ow) * g.cout + k];
                        for r in 0..g.kh {
                            let Some(ih) = g.in_row(oh, r) else { continue };
                            for s in 0..g.kw {
                                let Some(iw) = g.in_col(ow, s) else { continue };
                                let xi = ((n * g.h + ih) * g.w + iw) * g.cin + c0;
                                let wi = (r * g.kw + s) * g.cin_g;
                                axpy(&mut out[wi..wi + g.cin_g], d, &x[xi..xi + g.cin_g]);
                            }
                        }
                    }
                }
            }
        });
    dw
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1-image, 1-channel 3x3 input, 2x2 filter, stride 1, no padding, checked by hand.
    #[test]
    fn direct_convolution_by_hand() {
        let g = Geometry {
            n: 1,
            h: 3,
            w: 3,
            cin: 1,
            cout: 1,
            kh: 2,
            kw: 2,
            ho: 2,
            wo: 2,
            sh: 1,
            sw: 1,
            ph: 0,
            pw: 0,
            dh: 1,
            dw: 1,
            groups: 1,
            cin_g: 1,
            cout_g: 1,
        };
        let x: Vec<f64> = (1..=9).map(f64::from).collect();
        let w = [1.0, 2.0, 3.0, 4.0];
        // y00 = 1·1 + 2·2 + 4·3 + 5·4 = 37, then 47, 67, 77.
        assert_eq!(forward(&x, &w, &g), [37.0, 47.0, 67.0, 77.0]);
        let dy = [1.0, 0.0, 0.0, 1.0];
        // dx = w placed at (0,0) plus w placed at (1,1).
        assert_eq!(
            backward_data(&dy, &w, &g),
            [1.0, 2.0, 0.0, 3.0, 5.0, 2.0, 0.0, 3.0, 4.0]
        );
        // dw[r, s] = x[r, s] + x[r + 1, s + 1].
        assert_eq!(backward_filter(&x, &dy, &g), [6.0, 8.0, 12.0, 14.0]);
    }

    /// Every (output, tap, channel) product of one convolution, the way the definitions read:
    /// the forward sum and both gradients accumulated by scattering each product. Each slot
    /// gets the same products as in the loops above, in another order.
    /// Also returns each slot's sum of |product|s, which bounds the reordering error.
    fn by_definition(x: &[f64], w: &[f64], dy: &[f64], g: &Geometry) -> [[Vec<f64>; 2]; 3] {
        let [mut y, mut y_abs] = [(); 2].map(|_| vec![0.0; g.n * g.ho * g.wo * g.cout]);
        let [mut dx, mut dx_abs] = [(); 2].map(|_| vec![0.0; x.len()]);
        let [mut dw, mut dw_abs] = [(); 2].map(|_| vec![0.0; w.len()]);
        for n in 0..g.n {
            for oh in 0..g.ho {
                for ow in 0..g.wo {
                    for k in 0..g.cout {
                        let yi = ((n * g.ho + oh) * g.wo + ow) * g.cout + k;
                        for r in 0..g.kh {
                            for s in 0..g.kw {
                                let (Some(ih), Some(iw)) = (g.in_row(oh, r), g.in_col(ow, s))
                                else {
                                    continue;
                                };
                                for c in 0..g.cin_g {
                                    let ci = k / g.cout_g * g.cin_g + c;
                                    let xi = ((n * g.h + ih) * g.w + iw) * g.cin + ci;
                                    let wi = ((k * g.kh + r) * g.kw + s) * g.cin_g + c;
                                    y[yi] += x[xi] * w[wi];
                                    dx[xi] += dy[yi] * w[wi];
                                    dw[wi] += dy[yi] * x[xi];
                                    y_abs[yi] += (x[xi] * w[wi]).abs();
                                    dx_abs[xi] += (dy[yi] * w[wi]).abs();
                                    dw_abs[wi] += (dy[yi] * x[xi]).abs();
                                }
                            }
                        }
                    }
                }
            }
        }
        [[y, y_abs], [dx, dx_abs], [dw, dw_abs]]
    }

    /// Random geometries (groups, strides, padding, dilation, 1x1 and rectangular filters) on
    /// random data: the three directions equal the definitions up to f64 reordering.
    #[test]
    fn directions_match_the_definitions() {
        let mut rng = crate::Rng::new(crate::testing::fresh_seed("emu_direct_conv"));
        for _ in 0..40 {
            let groups = [1, 1, 2, 3][rng.below(4)];
            let (cin_g, cout_g) = (1 + rng.below(5), 1 + rng.below(5));
            let (kh, kw) = (1 + rng.below(3), 1 + rng.below(3));
            let (sh, sw, dh, dw) = (
                1 + rng.below(2),
                1 + rng.below(3),
                1 + rng.below(2),
                1 + rng.below(2),
            );
            let (ph, pw) = (rng.below(kh), rng.below(kw));
            let (h, w) = (kh * dh + rng.below(6), kw * dw + rng.below(6));
            let g = Geometry {
                n: 1 + rng.below(2),
                h,
                w,
                cin: groups * cin_g,
                cout: groups * cout_g,
                kh,
                kw,
                ho: (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1,
                wo: (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1,
                sh,
                sw,
                ph,
                pw,
                dh,
                dw,
                groups,
                cin_g,
                cout_g,
            };
            let mut fill = |len: usize| (0..len).map(|_| rng.normal()).collect::<Vec<f64>>();
            let x = fill(g.n * g.h * g.w * g.cin);
            let wt = fill(g.cout * g.kh * g.kw * g.cin_g);
            let dy = fill(g.n * g.ho * g.wo * g.cout);
            let want = by_definition(&x, &wt, &dy, &g);
            let got = [
                forward(&x, &wt, &g),
                backward_data(&dy, &wt, &g),
                backward_filter(&x, &dy, &g),
            ];
            for (dir, (got, [want, abs])) in ["y", "dx", "dw"].iter().zip(got.iter().zip(&want)) {
                assert_eq!(got.len(), want.len(), "{dir} of {g:?}");
                for (i, ((a, b), abs)) in got.iter().zip(want).zip(abs).enumerate() {
                    // Two orders of summing at most 500 terms differ by at most
                    // 2·499·ε·Σ|term| (recursive summation's bound).
                    let tol = 1000.0 * f64::EPSILON * abs;
                    assert!((a - b).abs() <= tol, "{dir}[{i}] of {g:?}: {a} against {b}");
                }
            }
        }
    }
}
