//! CPU reference of the packed batch statistics (see the module doc of
//! [`crate::ops::moments`]): the same arithmetic as kernels/moments.cu, in T, with the combine
//! in f64.

use super::{combine_moments, Moments};
use super::{packed_len, Combined, MomentsKernels, COUNT_SPLIT, OP};
use crate::ops::backend::Cpu;
use crate::{float_dispatch, Float, Result, Tensor};

pub fn pack<T: Float>(mean: &Tensor, var_u: &Tensor, rows: usize) -> Result<Tensor> {
    let (ms, vs) = (
        mean.cpu_slice::<T>(super::OP)?,
        var_u.cpu_slice::<T>(super::OP)?,
    );
    let c = ms.len();
    // var_u = M2/(rows − 1), and one row has M2 = 0.
    let m1 = T::from_usize(rows.saturating_sub(1));
    let r = rows as f64;
    let mut out: Vec<T> = ms.to_vec();
    out.extend(vs.iter().map(|&v| v * m1));
    out.extend([
        T::from_f64(r % COUNT_SPLIT),
        T::from_f64((r / COUNT_SPLIT).floor()),
    ]);
    Tensor::from_vec(out, &[1, packed_len(c)])
}

pub fn combine<T: Float>(all: &Tensor, local: usize) -> Result<Combined> {
    let a = all.cpu_slice::<T>(super::OP)?;
    let stride = all.shape()[1];
    let c = (stride - 2) / 2;
    let f64s = |v: &[T]| v.iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
    let parts: Vec<Moments> = a
        .chunks(stride)
        .map(|p| Moments {
            count: (p[2 * c].to_f64() + p[2 * c + 1].to_f64() * COUNT_SPLIT) as usize,
            mean: f64s(&p[..c]),
            m2: f64s(&p[c..2 * c]),
        })
        .collect();
    let g = combine_moments(&parts)?;
    let n = g.count as f64;
    let t = |v: Vec<f64>| Tensor::from_vec(v.into_iter().map(T::from_f64).collect(), &[c]);
    let unbias = (n - 1.0).max(1.0);
    Ok(Combined {
        mean: t(g.mean)?,
        var: t(g.m2.iter().map(|s| s / n).collect())?,
        var_unbiased: t(g.m2.iter().map(|s| s / unbias).collect())?,
        share: Tensor::from_vec(vec![T::from_f64(local as f64 / n)], &[1])?,
    })
}

pub fn scale<T: Float>(s: &Tensor, share: &Tensor) -> Result<Tensor> {
    let k = share.cpu_slice::<T>(super::OP)?[0];
    let v: Vec<T> = s
        .cpu_slice::<T>(super::OP)?
        .iter()
        .map(|&x| x * k)
        .collect();
    Tensor::from_vec(v, s.shape())
}

impl MomentsKernels for Cpu {
    fn moments_pack(mean: &Tensor, var_u: &Tensor, rows: usize) -> Result<Tensor> {
        float_dispatch!(OP, mean.dtype(), pack(mean, var_u, rows))
    }
    fn moments_combine(all: &Tensor, local: usize) -> Result<Combined> {
        float_dispatch!(OP, all.dtype(), combine(all, local))
    }
    fn moments_scale(s: &Tensor, share: &Tensor) -> Result<Tensor> {
        float_dispatch!(OP, s.dtype(), scale(s, share))
    }
}
