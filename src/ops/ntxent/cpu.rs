//! CPU NT-Xent: rows in parallel, similarities recomputed on the fly (memory O(2N + K)).

use crate::{Float, Result, Tensor};
use rayon::prelude::*;

fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).map(|(&x, &y)| x * y).sum()
}

/// Running log-sum-exp: rescales the partial sum whenever a larger term arrives.
struct OnlineLse<T> {
    max: T,
    sum: T,
}

impl<T: Float> OnlineLse<T> {
    fn new() -> Self {
        OnlineLse {
            max: T::NEG_INFINITY,
            sum: T::ZERO,
        }
    }
    fn push(&mut self, l: T) {
        if l > self.max {
            self.sum = self.sum * (self.max - l).exp() + T::ONE;
            self.max = l;
        } else {
            self.sum += (l - self.max).exp();
        }
    }
    fn value(&self) -> T {
        self.max + self.sum.ln()
    }
}

/// The batch rows, the queue rows and the layout that ties them together.
struct Rows<'a, T> {
    z: &'a [T],
    q: &'a [T],
    d: usize,
    half: usize,
}

impl<'a, T: Float> Rows<'a, T> {
    fn new(z: &'a Tensor, queue: Option<&'a Tensor>) -> Result<Self> {
        let q = match queue {
            Some(q) => q.cpu_slice::<T>("ntxent")?,
            None => &[],
        };
        Ok(Rows {
            z: z.cpu_slice::<T>("ntxent")?,
            q,
            d: z.last_dim(),
            half: z.shape()[0] / 2,
        })
    }
    fn rows(&self) -> usize {
        2 * self.half
    }
    fn row(&self, i: usize) -> &'a [T] {
        &self.z[i * self.d..(i + 1) * self.d]
    }
    fn queue_rows(&self) -> std::slice::ChunksExact<'a, T> {
        self.q.chunks_exact(self.d)
    }
    /// The other view of the same image.
    fn positive(&self, i: usize) -> usize {
        (i + self.half) % self.rows()
    }

    /// One anchor: (log-sum-exp of its 2N−1+K logits, its positive logit, largest negative logit).
    fn anchor(&self, i: usize, inv_tau: T) -> (T, T, T) {
        let (zi, p) = (self.row(i), self.positive(i));
        let mut lse = OnlineLse::new();
        let (mut pos, mut neg) = (T::ZERO, T::NEG_INFINITY);
        for k in (0..self.rows()).filter(|&k| k != i) {
            let l = dot(zi, self.row(k)) * inv_tau;
            lse.push(l);
            if k == p {
                pos = l;
            } else {
                neg = neg.max(l);
            }
        }
        for qk in self.queue_rows() {
            let l = dot(zi, qk) * inv_tau;
            lse.push(l);
            neg = neg.max(l);
        }
        (lse.value(), pos, neg)
    }
}

/// Loss = mean_i (lse_i − s_ip). With P_ik the softmax of anchor i, the gradient of row j is
/// (1/(2Nτ)) [Σ_{k≠j} (P_jk + P_kj − 2·[k = p(j)]) z_k + Σ_queue P_jq q] (similarity is symmetric,
/// so row j collects both its own terms and those where it is the candidate of anchor k).
pub fn forward<T: Float>(z: &Tensor, queue: Option<&Tensor>, tau: f64) -> Result<(Tensor, Tensor)> {
    let r = Rows::<T>::new(z, queue)?;
    let (n2, d) = (r.rows(), r.d);
    let inv_tau = T::from_f64(1.0 / tau);
    let stats: Vec<(T, T, T)> = (0..n2)
        .into_par_iter()
        .map(|i| r.anchor(i, inv_tau))
        .collect();
    let lse: Vec<T> = stats.iter().map(|s| s.0).collect();
    let loss = stats.iter().map(|&(l, p, _)| l - p).sum::<T>() / T::from_usize(n2);

    let scale = T::from_f64(1.0 / (n2 as f64 * tau));
    let two = T::from_f64(2.0);
    let mut dz = vec![T::ZERO; n2 * d];
    dz.par_chunks_mut(d).enumerate().for_each(|(j, out)| {
        let (zj, p) = (r.row(j), r.positive(j));
        for k in (0..n2).filter(|&k| k != j) {
            let zk = r.row(k);
            let s = dot(zj, zk) * inv_tau;
            let mut c = (s - lse[j]).exp() + (s - lse[k]).exp();
            if k == p {
                c -= two;
            }
            for (o, &v) in out.iter_mut().zip(zk) {
                *o += c * v;
            }
        }
        for qk in r.queue_rows() {
            let c = (dot(zj, qk) * inv_tau - lse[j]).exp();
            for (o, &v) in out.iter_mut().zip(qk) {
                *o += c * v;
            }
        }
        for o in out.iter_mut() {
            *o *= scale;
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
    let hits = (0..r.rows())
        .into_par_iter()
        .filter(|&i| {
            let (_, pos, neg) = r.anchor(i, T::ONE);
            pos > neg
        })
        .count();
    Ok(hits as f64 / r.rows() as f64)
}
