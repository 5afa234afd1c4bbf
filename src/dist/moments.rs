//! Batch statistics of rows spread over ranks. Each rank contributes its per-channel mean, sum
//! of squared deviations M2 and row count; they are combined exactly by Chan, Golub and
//! LeVeque's pairwise update, never through Σx² − n·mean² (which cancels catastrophically when
//! a channel's mean is large against its spread).

use super::Communicator;
use crate::{DType, Error, Result, Tensor};

const OP: &str = "sync batch_norm";

/// Per-channel moments of `count` rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Moments {
    pub count: usize,
    pub mean: Vec<f64>,
    /// Σ (x − mean)² per channel.
    pub m2: Vec<f64>,
}

/// The moments of the union of the parts' rows, combined in order (f64).
pub fn combine_moments(parts: &[Moments]) -> Result<Moments> {
    let c = parts.first().map_or(0, |p| p.mean.len());
    let mut acc = Moments {
        count: 0,
        mean: vec![0.0; c],
        m2: vec![0.0; c],
    };
    for p in parts {
        if p.mean.len() != c || p.m2.len() != c {
            return Err(Error::shape(
                OP,
                format!("moments of {} and {c} channels", p.mean.len()),
            ));
        }
        if p.count == 0 {
            continue;
        }
        if acc.count == 0 {
            acc = p.clone();
            continue;
        }
        let (na, nb) = (acc.count as f64, p.count as f64);
        let n = na + nb;
        for j in 0..c {
            let d = p.mean[j] - acc.mean[j];
            acc.mean[j] += d * nb / n;
            acc.m2[j] += p.m2[j] + d * d * na * nb / n;
        }
        acc.count += p.count;
    }
    Ok(acc)
}

/// The statistics of the global batch, as tensors of the local statistics' dtype and device.
pub struct GlobalMoments {
    pub mean: Tensor,
    /// Biased variance (what the normalisation uses).
    pub var: Tensor,
    /// Unbiased variance (what the running average folds in).
    pub var_unbiased: Tensor,
    /// Rows over all ranks.
    pub count: usize,
}

/// Counts travel as two floats of 24 bits each, exact in f32.
const COUNT_SPLIT: f64 = (1u64 << 24) as f64;

/// Combines this rank's statistics of `rows` rows (mean and unbiased variance, as the batch
/// norm ops return them) with every other rank's: one all-gather of [mean, M2, count].
pub fn global_moments(
    comm: &dyn Communicator,
    mean: &Tensor,
    var_unbiased: &Tensor,
    rows: usize,
) -> Result<GlobalMoments> {
    let c = mean.numel();
    if var_unbiased.numel() != c || rows == 0 || rows as f64 >= COUNT_SPLIT * COUNT_SPLIT {
        return Err(Error::shape(
            OP,
            format!(
                "statistics {:?}/{:?} over {rows} rows",
                mean.shape(),
                var_unbiased.shape()
            ),
        ));
    }
    let mut row = mean.to_vec_f64()?;
    // var_unbiased = M2/(rows − 1), and one row has M2 = 0.
    let m1 = rows.saturating_sub(1) as f64;
    row.extend(var_unbiased.to_vec_f64()?.into_iter().map(|v| v * m1));
    let r = rows as f64;
    row.extend([r % COUNT_SPLIT, (r / COUNT_SPLIT).floor()]);
    let dtype = match mean.dtype() {
        DType::F64 => DType::F64,
        _ => DType::F32,
    };
    let packed = Tensor::from_f64(&row, &[1, 2 * c + 2], dtype)?.to_device(mean.device())?;
    let all = comm.all_gather(&packed)?.to_vec_f64()?;
    let parts: Vec<Moments> = all
        .chunks(2 * c + 2)
        .map(|p| Moments {
            count: (p[2 * c] + p[2 * c + 1] * COUNT_SPLIT) as usize,
            mean: p[..c].to_vec(),
            m2: p[c..2 * c].to_vec(),
        })
        .collect();
    let g = combine_moments(&parts)?;
    let n = g.count as f64;
    let var: Vec<f64> = g.m2.iter().map(|&s| s / n).collect();
    let var_u: Vec<f64> = g.m2.iter().map(|&s| s / (n - 1.0).max(1.0)).collect();
    let tensor = |v: &[f64]| Tensor::from_f64(v, &[c], mean.dtype())?.to_device(mean.device());
    Ok(GlobalMoments {
        mean: tensor(&g.mean)?,
        var: tensor(&var)?,
        var_unbiased: tensor(&var_u)?,
        count: g.count,
    })
}
