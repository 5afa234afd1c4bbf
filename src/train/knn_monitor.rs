//! The kNN monitor of pretraining (as in InstDisc and MoCo): the frozen encoder's
//! representations of the labelled images are the memory; each test image takes the k nearest
//! by cosine similarity, which vote with weight exp(similarity / τ); top-1 of the winning
//! class. It needs no training, so it shows whether the representation is learning the
//! classes while pretraining runs.

use super::common::Env;
use super::model::SimClrNet;
use crate::autograd::Tape;
use crate::data::{Dataset, EvalTransform, Loader};
use crate::params::ParamStore;
use crate::{Error, Result};
use std::sync::Arc;

/// Neighbours and vote temperature of the InstDisc / MoCo monitors.
pub const K: usize = 200;
pub const TAU: f64 = 0.07;

/// Unit-length rows of a row-major `[n, dim]` matrix (zero rows stay zero).
pub fn normalize_rows(x: &mut [f32], dim: usize) {
    for row in x.chunks_exact_mut(dim) {
        let n = row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        if n > 0.0 {
            row.iter_mut().for_each(|v| *v = (*v as f64 / n) as f32);
        }
    }
}

/// The class each query row gets from a weighted vote of its `k` most similar memory rows.
/// Rows must be L2-normalised (similarity = dot product). Ties go to the lower class index.
pub fn knn_predict(
    memory: &[f32],
    memory_labels: &[usize],
    queries: &[f32],
    dim: usize,
    classes: usize,
    k: usize,
    tau: f64,
) -> Vec<usize> {
    let k = k.min(memory_labels.len()).max(1);
    queries
        .chunks_exact(dim)
        .map(|q| {
            let mut sims: Vec<(f32, usize)> = memory
                .chunks_exact(dim)
                .zip(memory_labels)
                .map(|(m, &y)| (q.iter().zip(m).map(|(a, b)| a * b).sum::<f32>(), y))
                .collect();
            let k = k.min(sims.len());
            if k < sims.len() {
                sims.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
            }
            let mut votes = vec![0f64; classes];
            for &(s, y) in &sims[..k] {
                votes[y] += (s as f64 / tau).exp();
            }
            // First maximum: ties resolve to the lowest class index, deterministically.
            (0..classes).fold(0, |best, c| if votes[c] > votes[best] { c } else { best })
        })
        .collect()
}

/// Fraction of queries whose kNN prediction is their label.
pub fn knn_top1(
    memory: &[f32],
    memory_labels: &[usize],
    queries: &[f32],
    query_labels: &[usize],
    dim: usize,
    classes: usize,
) -> f64 {
    let pred = knn_predict(memory, memory_labels, queries, dim, classes, K, TAU);
    let hits = pred
        .iter()
        .zip(query_labels)
        .filter(|(p, y)| p == y)
        .count();
    hits as f64 / query_labels.len().max(1) as f64
}

/// What the monitor looks at: the labelled images (memory) and a fixed, evenly spread subset
/// of the test split (queries), chosen once per run.
pub struct KnnMonitor {
    memory: Vec<usize>,
    queries: Vec<usize>,
}

impl KnnMonitor {
    /// `max_queries` caps the test images used (0: all), keeping each check cheap.
    pub fn new(memory: Vec<usize>, test_len: usize, max_queries: usize) -> Result<Self> {
        if memory.is_empty() || test_len == 0 {
            return Err(Error::Config(
                "kNN monitor: needs labelled images and a test split".into(),
            ));
        }
        let n = if max_queries == 0 {
            test_len
        } else {
            max_queries.min(test_len)
        };
        let queries = (0..n).map(|i| i * test_len / n).collect();
        Ok(KnnMonitor { memory, queries })
    }

    /// kNN top-1 of the network's current encoder (BN in eval mode, nothing recorded).
    pub fn top1(&self, env: &Env, net: &SimClrNet, store: &mut ParamStore) -> Result<f64> {
        let (mem, mem_y, dim) = features(env, net, store, &env.splits.train, &self.memory)?;
        let (q, q_y, _) = features(env, net, store, &env.splits.test, &self.queries)?;
        Ok(knn_top1(&mem, &mem_y, &q, &q_y, dim, env.num_classes()))
    }
}

/// Normalised encoder representations and labels of `indices` of `ds`.
fn features(
    env: &Env,
    net: &SimClrNet,
    store: &mut ParamStore,
    ds: &Arc<dyn Dataset>,
    indices: &[usize],
) -> Result<(Vec<f32>, Vec<usize>, usize)> {
    let loader = Loader::new(
        ds.clone(),
        Arc::new(EvalTransform::new(env.augment_config())?),
        env.loader_config(256, 1, Some(indices.to_vec()), false),
    )?;
    let policy = env.activations();
    let (mut feats, mut labels, mut dim) = (Vec::new(), Vec::new(), 0);
    for b in loader.epoch(0) {
        let b = b?;
        let mut t = Tape::inference();
        let x = t.constant(b.views[0].to_device(env.device)?);
        let h = net
            .encoder
            .forward(&mut policy.ctx(&mut t, store, false), &x)?;
        dim = h.value().last_dim();
        feats.extend(h.value().to_vec_f32()?);
        labels.extend(b.labels);
    }
    normalize_rows(&mut feats, dim.max(1));
    Ok((feats, labels, dim))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    /// `n` points of `classes` clusters (tight around random unit centres when `spread` is
    /// small), normalised.
    fn points(
        rng: &mut Rng,
        centres: &[Vec<f32>],
        n: usize,
        spread: f32,
    ) -> (Vec<f32>, Vec<usize>) {
        let dim = centres[0].len();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..n {
            let c = i % centres.len();
            x.extend(centres[c].iter().map(|v| v + spread * rng.normal() as f32));
            y.push(c);
        }
        normalize_rows(&mut x, dim);
        (x, y)
    }

    #[test]
    fn clustered_embeddings_give_high_knn_accuracy_and_random_ones_chance() {
        let seed = crate::testing::fresh_seed("knn_monitor");
        let mut rng = Rng::new(seed);
        let (classes, dim) = (10, 32);
        let centres: Vec<Vec<f32>> = (0..classes)
            .map(|_| (0..dim).map(|_| rng.normal() as f32).collect())
            .collect();
        let (mem, mem_y) = points(&mut rng, &centres, 300, 0.3);
        let (q, q_y) = points(&mut rng, &centres, 500, 0.3);
        let acc = knn_top1(&mem, &mem_y, &q, &q_y, dim, classes);
        assert!(acc > 0.95, "clustered: {acc}");
        // Random embeddings: labels carry no information about position.
        let noise = vec![vec![0f32; dim]; classes];
        let (mem, mem_y) = points(&mut rng, &noise, 300, 1.0);
        let (q, q_y) = points(&mut rng, &noise, 2000, 1.0);
        let acc = knn_top1(&mem, &mem_y, &q, &q_y, dim, classes);
        assert!((acc - 0.1).abs() < 0.05, "random: {acc}");
    }

    #[test]
    fn votes_are_weighted_by_similarity() {
        // One very close neighbour of class 1 outvotes two distant ones of class 0 at τ = 0.07.
        let memory = [1.0, 0.0, 0.0, 1.0, 0.0, 1.0];
        let q = [0.999f32, 0.0447];
        let pred = knn_predict(&memory, &[1, 0, 0], &q, 2, 2, 3, TAU);
        assert_eq!(pred, vec![1]);
        // With k = 1 only the nearest counts.
        assert_eq!(knn_predict(&memory, &[0, 1, 1], &q, 2, 2, 1, TAU), vec![0]);
    }
}
