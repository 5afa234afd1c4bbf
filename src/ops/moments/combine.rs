//! The host reference of combining per-rank moments (f64): Chan, Golub and LeVeque's pairwise
//! update, in order.

use crate::{Error, Result};

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
