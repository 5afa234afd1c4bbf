//! The trainer's side of data parallelism, built on the collectives of [`crate::comm`]: the
//! parameter gradients summed over the ranks (after backward, or in buckets while it runs) and
//! the in-process thread replicas. The step itself is [`super::contrastive_step`].

mod buckets;
mod grad_sum;
mod replicas;

pub use buckets::{BucketedReduce, Buckets, Event, DEFAULT_BUCKET_MB};
pub use grad_sum::{all_reduce_grads, sum_after_micro_step};
pub use replicas::{shard, ThreadReplicas};
