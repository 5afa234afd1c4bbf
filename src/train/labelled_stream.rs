//! The labelled term of distillation with α < 1: an endless stream of batches drawn from the
//! labelled subset only (the 1% or 10%), as in the paper's loss, where the cross-entropy sums
//! over the labelled set and the distillation term over every training image.

use super::common::Env;
use super::finetune::labelled_indices;
use crate::autograd::{Tape, Var};
use crate::data::{Batch, Batches, FinetuneAugment, Loader};
use crate::ops::{self, DistillSpec};
use crate::{Error, Result, Tensor};
use std::sync::Arc;

/// Batches of labelled images, cycling through reshuffled passes over the subset.
pub struct LabelledStream {
    loader: Loader,
    pass: u64,
    current: Batches,
}

/// Each distillation epoch restarts the stream at its own pass numbers, so a resumed run
/// draws the same labelled batches as an uninterrupted one.
const PASSES_PER_EPOCH: u64 = 1 << 20;

impl LabelledStream {
    /// The run's labelled subset (the one fine-tuning used), in batches of at most `batch`.
    pub fn new(env: &Env, batch: usize) -> Result<Self> {
        let indices = labelled_indices(env)?;
        let batch = batch.min(indices.len()).max(1);
        let loader = Loader::new(
            env.splits.train.clone(),
            Arc::new(FinetuneAugment::new(env.augment_config())?),
            env.loader_config(batch, 1, Some(indices), true),
        )?;
        if loader.batches_per_epoch() == 0 {
            return Err(Error::Config("distillation: empty labelled subset".into()));
        }
        let current = loader.epoch(0);
        Ok(LabelledStream {
            loader,
            pass: 0,
            current,
        })
    }

    /// Positions the stream at the start of distillation epoch `epoch`.
    pub fn restart(&mut self, epoch: usize) {
        self.pass = epoch as u64 * PASSES_PER_EPOCH;
        self.current = self.loader.epoch(self.pass);
    }

    pub fn next_batch(&mut self) -> Result<Batch> {
        loop {
            if let Some(b) = self.current.next() {
                return b;
            }
            self.pass += 1;
            self.current = self.loader.epoch(self.pass);
        }
    }
}

/// `α · distillation(all images of the batch) + (1 − α) · cross-entropy(labelled batch)`,
/// with `labelled_logits` the student's logits of a batch from the stream.
pub fn mixed_loss(
    tape: &mut Tape,
    logits: &Var,
    teacher_logits: &Tensor,
    labelled: Option<(&Var, &[usize])>,
    spec: DistillSpec,
) -> Result<Var> {
    let soft = ops::distill(
        tape,
        logits,
        teacher_logits,
        None,
        DistillSpec::unlabelled(spec.tau),
    )?;
    let Some((l_logits, labels)) = labelled.filter(|_| spec.alpha < 1.0) else {
        return Ok(soft);
    };
    let ce = ops::cross_entropy(tape, l_logits, labels)?;
    let soft = ops::scale(tape, &soft, spec.alpha)?;
    let ce = ops::scale(tape, &ce, 1.0 - spec.alpha)?;
    ops::add(tape, &soft, &ce)
}
