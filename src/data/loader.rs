//! Batches of transformed views, built by worker threads ahead of the consumer.
//!
//! Batch `k` of an epoch is built by worker `k % workers` and sent through that worker's own
//! bounded channel, so batches arrive in order, at most `prefetch` are buffered, and the
//! contents depend only on (seed, epoch) — never on which thread ran first.

use super::augment::{sample_rng, Transform};
use super::dataset::{Dataset, Routed, Sample};
use crate::{Error, Result, Rng, Tensor};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

/// One batch: `views[v]` is `[B, H, W, C]` f32; `labels` and dataset `indices` have length B.
#[derive(Debug)]
pub struct Batch {
    pub views: Vec<Tensor>,
    pub labels: Vec<usize>,
    pub indices: Vec<usize>,
}

#[derive(Clone, Debug)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// 1 (fine-tuning, evaluation) or 2 (contrastive pretraining).
    pub views: usize,
    pub seed: u64,
    /// Draw a fresh order every epoch (training) or keep index order (evaluation).
    pub shuffle: bool,
    /// Worker threads; 0 builds batches on the calling thread.
    pub workers: usize,
    /// Batches buffered ahead of the consumer (at least one per worker).
    pub prefetch: usize,
    pub drop_last: bool,
    /// Iterate only these dataset indices (e.g. a labelled subset) instead of all.
    pub indices: Option<Vec<usize>>,
    /// Data parallel: (rank, world). `batch_size` is then the per-rank batch; every rank draws
    /// the same global order and takes its slice of each global batch (`stream::shard`).
    pub shard: Option<(usize, usize)>,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        LoaderConfig {
            batch_size: 256,
            views: 1,
            seed: 0,
            shuffle: true,
            workers,
            prefetch: 2 * workers,
            drop_last: false,
            indices: None,
            shard: None,
        }
    }
}

pub struct Loader {
    dataset: Arc<dyn Dataset>,
    transform: Arc<dyn Transform>,
    cfg: LoaderConfig,
    base: Arc<Vec<usize>>,
}

impl Loader {
    pub fn new(
        dataset: Arc<dyn Dataset>,
        transform: Arc<dyn Transform>,
        cfg: LoaderConfig,
    ) -> Result<Self> {
        if cfg.batch_size == 0 {
            return Err(Error::Config("loader: batch size must be positive".into()));
        }
        if !(1..=2).contains(&cfg.views) {
            return Err(Error::Config(format!(
                "loader: views must be 1 or 2, got {}",
                cfg.views
            )));
        }
        if let Some((rank, world)) = cfg.shard {
            super::stream::shard::shard_order(&[], cfg.batch_size * world, rank, world)?;
        }
        let base: Vec<usize> = match &cfg.indices {
            Some(ix) => {
                if let Some(&bad) = ix.iter().find(|&&i| i >= dataset.len()) {
                    return Err(Error::Config(format!(
                        "loader: index {bad} out of range (dataset has {})",
                        dataset.len()
                    )));
                }
                ix.clone()
            }
            None => (0..dataset.len()).collect(),
        };
        Ok(Loader {
            dataset,
            transform,
            cfg,
            base: Arc::new(base),
        })
    }

    pub fn config(&self) -> &LoaderConfig {
        &self.cfg
    }

    /// Number of items this process iterates per epoch (the subset's size when `indices` is
    /// set; its share of whole global batches when sharded).
    pub fn len(&self) -> usize {
        match self.cfg.shard {
            Some((_, world)) => {
                let global = self.cfg.batch_size * world;
                self.base.len() / global * self.cfg.batch_size
            }
            None => self.base.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn batches_per_epoch(&self) -> usize {
        let (n, b) = (self.len(), self.cfg.batch_size);
        if self.cfg.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The epoch's visiting order: a permutation of the indices fixed by (seed, epoch); this
    /// rank's share of it when sharded.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut order = (*self.base).clone();
        if self.cfg.shuffle {
            let mut rng = Rng::derive(Rng::derive(self.cfg.seed, 0x4f72_6465).next_u64(), epoch);
            rng.shuffle(&mut order);
        }
        match self.cfg.shard {
            // Checked in `new`: the rank is in range and the global batch divides.
            Some((rank, world)) => {
                super::stream::shard::shard_order(&order, self.cfg.batch_size * world, rank, world)
                    .unwrap_or_default()
            }
            None => order,
        }
    }

    /// Iterates the batches of `epoch`, starting the workers.
    pub fn epoch(&self, epoch: u64) -> Batches {
        let job = self.job(epoch);
        self.spawn(Arc::new(move |k| job.build(k)))
    }

    /// What every batch of `epoch` is built from.
    pub(crate) fn job(&self, epoch: u64) -> Job {
        Job {
            dataset: self.dataset.clone(),
            transform: self.transform.clone(),
            order: Arc::new(self.order(epoch)),
            batch_size: self.cfg.batch_size,
            views: self.cfg.views,
            seed: self.cfg.seed,
            epoch,
        }
    }

    /// Runs `build(k)` for every batch `k` of an epoch on the workers, in order.
    pub(crate) fn spawn<T: Send + 'static>(&self, build: Build<T>) -> Ordered<T> {
        let n_batches = self.batches_per_epoch();
        let workers = self.cfg.workers.min(n_batches);
        let mut rxs = Vec::new();
        let mut handles = Vec::new();
        if workers > 0 {
            let cap = self.cfg.prefetch.div_ceil(workers).max(1);
            for w in 0..workers {
                let (tx, rx) = sync_channel::<Result<T>>(cap);
                let build = build.clone();
                handles.push(std::thread::spawn(move || {
                    for k in (w..n_batches).step_by(workers) {
                        let b = build(k);
                        let failed = b.is_err();
                        if tx.send(b).is_err() || failed {
                            return; // consumer gone, or the epoch ended with an error
                        }
                    }
                }));
                rxs.push(rx);
            }
        }
        Ordered {
            build,
            next: 0,
            n_batches,
            rxs,
            handles,
            done: false,
        }
    }
}

/// Builds batch `k` of an epoch (on a worker thread).
pub(crate) type Build<T> = Arc<dyn Fn(usize) -> Result<T> + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Job {
    dataset: Arc<dyn Dataset>,
    transform: Arc<dyn Transform>,
    order: Arc<Vec<usize>>,
    batch_size: usize,
    views: usize,
    seed: u64,
    epoch: u64,
}

impl Job {
    /// The dataset indices of batch `k`.
    pub(crate) fn indices(&self, k: usize) -> Vec<usize> {
        let end = ((k + 1) * self.batch_size).min(self.order.len());
        self.order[k * self.batch_size..end].to_vec()
    }

    /// The smallest decoded size any of image `i`'s views' crops needs, given its full size.
    fn need(&self, i: usize) -> impl Fn(usize, usize) -> (usize, usize) + '_ {
        move |fh: usize, fw: usize| {
            (0..self.views).fold((1, 1), |(h, w), v| {
                let (nh, nw) = self.transform.decode_need((fh, fw), &self.rng(i, v));
                (h.max(nh), w.max(nw))
            })
        }
    }

    fn check_channels<'a>(&self, i: usize, sample: Sample<'a>) -> Result<Sample<'a>> {
        let c = self.dataset.channels();
        if sample.image.channels != c {
            return Err(Error::Config(format!(
                "dataset image {i} has {} channels, the dataset declares {c}",
                sample.image.channels
            )));
        }
        Ok(sample)
    }

    /// Image `i`, decoded once for all views at the smallest scale any of their crops needs.
    pub(crate) fn decode(&self, i: usize) -> Result<Sample<'_>> {
        self.check_channels(i, self.dataset.sample(i, &self.need(i))?)
    }

    /// Image `i` left encoded for the GPU's decoder when the dataset offers it so, else as
    /// [`Job::decode`] gives it.
    pub(crate) fn decode_or_encoded(&self, i: usize) -> Result<Routed<'_>> {
        match self.dataset.sample_or_encoded(i, &self.need(i))? {
            Routed::Decoded(s) => Ok(Routed::Decoded(self.check_channels(i, s)?)),
            encoded => Ok(encoded),
        }
    }

    /// The generator of view `v` of image `i` (the same on every path).
    pub(crate) fn rng(&self, i: usize, v: usize) -> Rng {
        sample_rng(self.seed, self.epoch, i, v)
    }

    pub(crate) fn views(&self) -> usize {
        self.views
    }

    fn build(&self, k: usize) -> Result<Batch> {
        let indices = self.indices(k);
        let c = self.dataset.channels();
        let (h, w, oc) = self.transform.output_shape(c);
        let per = h * w * oc;
        let mut views: Vec<Vec<f32>> = vec![vec![0f32; indices.len() * per]; self.views];
        let mut labels = Vec::with_capacity(indices.len());
        for (j, &i) in indices.iter().enumerate() {
            let sample = self.decode(i)?;
            let img = sample.image;
            for (v, buf) in views.iter_mut().enumerate() {
                let mut rng = self.rng(i, v);
                self.transform.apply_full(
                    &img,
                    sample.full,
                    &mut rng,
                    &mut buf[j * per..(j + 1) * per],
                )?;
            }
            labels.push(sample.label);
        }
        let views = views
            .into_iter()
            .map(|v| Tensor::from_vec(v, &[indices.len(), h, w, oc]))
            .collect::<Result<_>>()?;
        Ok(Batch {
            views,
            labels,
            indices,
        })
    }
}

/// The batches of one epoch, in order. After an error, iteration ends.
pub type Batches = Ordered<Batch>;

/// Batches of any kind, built by the workers, in order.
pub struct Ordered<T> {
    build: Build<T>,
    next: usize,
    n_batches: usize,
    rxs: Vec<Receiver<Result<T>>>,
    handles: Vec<JoinHandle<()>>,
    done: bool,
}

impl<T> Iterator for Ordered<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        if self.done || self.next >= self.n_batches {
            return None;
        }
        let k = self.next;
        self.next += 1;
        let b = if self.rxs.is_empty() {
            (self.build)(k)
        } else {
            self.rxs[k % self.rxs.len()].recv().unwrap_or_else(|_| {
                Err(Error::Config(format!(
                    "loader worker for batch {k} stopped"
                )))
            })
        };
        self.done = b.is_err();
        Some(b)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = if self.done {
            0
        } else {
            self.n_batches - self.next
        };
        (left, Some(left))
    }
}

impl<T> Drop for Ordered<T> {
    fn drop(&mut self) {
        // Dropping the receivers unblocks workers waiting to send; then they exit.
        self.rxs.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}
