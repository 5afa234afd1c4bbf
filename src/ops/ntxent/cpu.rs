//! CPU NT-Xent, tiled like the GPU kernel: anchors in blocks of [`BLOCK`] rows, each block's
//! similarities to every candidate (the 2N batch rows, then the K queue rows) computed by one
//! GEMM into a BLOCK x (2N + K) buffer, never the whole 2N x (2N + K) matrix. Memory is
//! O(BLOCK·(2N + K)) per thread; every sum runs in a fixed order, so results are deterministic.

use super::{Accuracy, NtXentKernels, OP};
use crate::ops::backend::Cpu;
use crate::ops::elementwise::scale_forward;
use crate::ops::matmul::gemm::{gemm, Layout};
use crate::{float_dispatch, Float, Result, Tensor};
use rayon::prelude::*;

/// Anchors per block: enough rows for the GEMM to run near its peak, few enough that a block's
/// similarity rows stay small (64 x 65,536 f32 = 16 MiB at the largest batch we support).
const BLOCK: usize = 64;

/// The batch rows, the queue rows and the layout that ties them together.
struct Rows<'a, T> {
    z: &'a [T],
    q: &'a [T],
    d: usize,
    half: usize,
    nq: usize,
}

impl<'a, T: Float> Rows<'a, T> {
    fn new(z: &'a Tensor, queue: Option<&'a Tensor>) -> Result<Self> {
        let q = match queue {
            Some(q) => q.cpu_slice::<T>("ntxent")?,
            None => &[],
        };
        let d = z.last_dim();
        Ok(Rows {
            z: z.cpu_slice::<T>("ntxent")?,
            q,
            d,
            half: z.shape()[0] / 2,
            nq: q.len() / d.max(1),
        })
    }
    fn rows(&self) -> usize {
        2 * self.half
    }
    /// Candidates per anchor row of a similarity block (self included, masked later).
    fn width(&self) -> usize {
        self.rows() + self.nq
    }
    /// The other view of the same image.
    fn positive(&self, i: usize) -> usize {
        (i + self.half) % self.rows()
    }

    /// s[r][k] = z_{i0+r} · cand_k / τ for the anchors i0..i0+b; `s` holds b·width values.
    fn similarities(&self, i0: usize, b: usize, inv_tau: T, s: &mut [T]) {
        let (n2, d, w) = (self.rows(), self.d, self.width());
        let a = Layout::row_major(b, d).at(i0 * d);
        gemm(
            inv_tau,
            self.z,
            a,
            self.z,
            Layout::row_major(n2, d).t(),
            T::ZERO,
            s,
            Layout::row_major(b, n2).with_rs(w),
        );
        if self.nq > 0 {
            gemm(
                inv_tau,
                self.z,
                a,
                self.q,
                Layout::row_major(self.nq, d).t(),
                T::ZERO,
                s,
                Layout::row_major(b, self.nq).with_rs(w).at(n2),
            );
        }
    }

    /// Per anchor: (log-sum-exp of its 2N−1+K logits, its positive logit, largest negative).
    fn stats(&self, inv_tau: T) -> Vec<(T, T, T)> {
        let (n2, w) = (self.rows(), self.width());
        let blocks: Vec<usize> = (0..n2).step_by(BLOCK).collect();
        let per_block: Vec<Vec<(T, T, T)>> = blocks
            .par_iter()
            .map(|&i0| {
                let b = BLOCK.min(n2 - i0);
                let mut s = vec![T::ZERO; b * w];
                self.similarities(i0, b, inv_tau, &mut s);
                s.chunks(w)
                    .enumerate()
                    .map(|(r, row)| {
                        let (i, p) = (i0 + r, self.positive(i0 + r));
                        let others = || row.iter().enumerate().filter(move |&(k, _)| k != i);
                        let max = others().fold(T::NEG_INFINITY, |m, (_, &l)| m.max(l));
                        let sum: T = others().map(|(_, &l)| (l - max).exp()).sum();
                        let neg = others()
                            .filter(|&(k, _)| k != p)
                            .fold(T::NEG_INFINITY, |m, (_, &l)| m.max(l));
                        (max + sum.ln(), row[p], neg)
                    })
                    .collect()
            })
            .collect();
        per_block.into_iter().flatten().collect()
    }
}

/// Loss = mean_i (lse_i − s_ip). With P_ik the softmax of anchor i, the gradient of row j is
/// (1/(2Nτ)) [Σ_{k≠j} (P_jk + P_kj − 2·[k = p(j)]) z_k + Σ_queue P_jq q] (similarity is symmetric,
/// so row j collects both its own terms and those where it is the candidate of anchor k).
pub fn forward<T: Float>(z: &Tensor, queue: Option<&Tensor>, tau: f64) -> Result<(Tensor, Tensor)> {
    let r = Rows::<T>::new(z, queue)?;
    let (n2, d, w) = (r.rows(), r.d, r.width());
    let inv_tau = T::from_f64(1.0 / tau);
    let stats = r.stats(inv_tau);
    let lse: Vec<T> = stats.iter().map(|s| s.0).collect();
    let loss = stats.iter().map(|&(l, p, _)| l - p).sum::<T>() / T::from_usize(n2);

    let scale = T::from_f64(1.0 / (n2 as f64 * tau));
    let two = T::from_f64(2.0);
    let mut dz = vec![T::ZERO; n2 * d];
    dz.par_chunks_mut(BLOCK * d)
        .enumerate()
        .for_each(|(blk, out)| {
            let (j0, b) = (blk * BLOCK, out.len() / d);
            // Similarities, turned in place into the coefficients C_jk.
            let mut c = vec![T::ZERO; b * w];
            r.similarities(j0, b, inv_tau, &mut c);
            for (row, cj) in c.chunks_mut(w).enumerate() {
                let (j, p) = (j0 + row, r.positive(j0 + row));
                for (k, v) in cj.iter_mut().enumerate() {
                    let s = *v;
                    *v = if k == j {
                        T::ZERO
                    } else if k < n2 {
                        let mut c = (s - lse[j]).exp() + (s - lse[k]).exp();
                        if k == p {
                            c -= two;
                        }
                        c
                    } else {
                        (s - lse[j]).exp()
                    };
                }
            }
            // dz_block = scale · (C[:, batch] · Z + C[:, queue] · Q).
            gemm(
                scale,
                &c,
                Layout::row_major(b, n2).with_rs(w),
                r.z,
                Layout::row_major(n2, d),
                T::ZERO,
                out,
                Layout::row_major(b, d),
            );
            if r.nq > 0 {
                gemm(
                    scale,
                    &c,
                    Layout::row_major(b, r.nq).with_rs(w).at(n2),
                    r.q,
                    Layout::row_major(r.nq, d),
                    T::ONE,
                    out,
                    Layout::row_major(b, d),
                );
            }
        });
    Ok((
        Tensor::from_vec(vec![loss], &[])?,
        Tensor::from_vec(dz, z.shape())?,
    ))
}

/// Fraction of anchors whose positive beats every negative strictly (temperature-free).
pub fn accuracy<T: Float>(z: &Tensor, queue: Option<&Tensor>) -> Result<f64> {
    let r = Rows::<T>::new(z, queue)?;
    let hits = r
        .stats(T::ONE)
        .iter()
        .filter(|&&(_, pos, neg)| pos > neg)
        .count();
    Ok(hits as f64 / r.rows() as f64)
}

impl NtXentKernels for Cpu {
    fn ntxent_forward(z: &Tensor, queue: Option<&Tensor>, tau: f64) -> Result<(Tensor, Tensor)> {
        float_dispatch!(OP, z.dtype(), forward(z, queue, tau))
    }

    fn ntxent_accuracy(z: &Tensor, queue: Option<&Tensor>) -> Result<Accuracy> {
        let v = float_dispatch!("ntxent_accuracy", z.dtype(), accuracy(z, queue))?;
        Ok(Accuracy::Value(v))
    }

    fn scale_by_upstream(dz: &Tensor, g: &Tensor) -> Result<Tensor> {
        scale_forward(dz, g.item()?)
    }
}
