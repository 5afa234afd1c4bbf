//! CPU distillation loss: one row (image) per task.

use super::{DistillKernels, DistillSpec, OP};
use crate::ops::backend::Cpu;
use crate::ops::softmax::logsumexp;
use crate::{float_dispatch, Float, Result, Tensor};
use rayon::prelude::*;

/// One row: returns its loss and writes its (un-averaged) gradient into `g`.
fn row<T: Float>(s: &[T], t: &[T], label: Option<usize>, alpha: T, tau: T, g: &mut [T]) -> T {
    let one_minus = T::ONE - alpha;
    let mut loss = T::ZERO;
    if alpha > T::ZERO {
        let st: Vec<T> = s.iter().map(|&v| v / tau).collect();
        let tt: Vec<T> = t.iter().map(|&v| v / tau).collect();
        let (ls, lt) = (logsumexp(&st), logsumexp(&tt));
        for ((gj, &a), &b) in g.iter_mut().zip(&st).zip(&tt) {
            let pt = (b - lt).exp();
            loss -= alpha * pt * (a - ls);
            *gj += alpha * ((a - ls).exp() - pt) / tau;
        }
    }
    if let (Some(y), true) = (label, one_minus > T::ZERO) {
        let l = logsumexp(s);
        loss += one_minus * (l - s[y]);
        for (gj, &v) in g.iter_mut().zip(s) {
            *gj += one_minus * (v - l).exp();
        }
        g[y] -= one_minus;
    }
    loss
}

pub fn forward<T: Float>(
    student: &Tensor,
    teacher: &Tensor,
    labels: Option<&[usize]>,
    spec: DistillSpec,
) -> Result<(Tensor, Tensor)> {
    let (s, t) = (
        student.cpu_slice::<T>("distill")?,
        teacher.cpu_slice::<T>("distill")?,
    );
    let (b, c) = (student.shape()[0], student.last_dim());
    let (alpha, tau) = (T::from_f64(spec.alpha), T::from_f64(spec.tau));
    let inv_b = T::ONE / T::from_usize(b);
    let mut grad = vec![T::ZERO; b * c];
    let losses: Vec<T> = grad
        .par_chunks_mut(c)
        .enumerate()
        .map(|(i, g)| {
            let l = row(
                &s[i * c..(i + 1) * c],
                &t[i * c..(i + 1) * c],
                labels.map(|y| y[i]),
                alpha,
                tau,
                g,
            );
            g.iter_mut().for_each(|v| *v *= inv_b);
            l
        })
        .collect();
    let loss = losses.into_iter().sum::<T>() * inv_b;
    Ok((
        Tensor::from_vec(vec![loss], &[])?,
        Tensor::from_vec(grad, student.shape())?,
    ))
}

impl DistillKernels for Cpu {
    fn distill_forward(
        student: &Tensor,
        teacher: &Tensor,
        labels: Option<&[usize]>,
        spec: DistillSpec,
    ) -> Result<(Tensor, Tensor)> {
        float_dispatch!(OP, student.dtype(), forward(student, teacher, labels, spec))
    }
}
