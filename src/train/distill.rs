//! Distillation: a fixed fine-tuned teacher labels the unlabelled training images on the fly
//! (BN in eval mode, nothing recorded); a student of any architecture learns from its
//! softened predictions, optionally mixed with the cross-entropy on the labelled subset (α < 1;
//! see `labelled_stream`).

use super::common::{finish_step, lars, schedule, Env, StepInfo};
use super::dist_run;
use super::epoch_loop::EpochLoop;
use super::finetune::finish_classifier;
use super::labelled_stream::{mixed_loss, LabelledStream};
use super::model::{Classifier, ModelMeta};
use super::progress::Progress;
use super::StageResult;
use crate::autograd::Tape;
use crate::data::FinetuneAugment;
use crate::ops::DistillSpec;
use crate::{checkpoint, Error, Result};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub const STAGE: &str = "distill";

pub fn run(env: &mut Env, teacher_path: &Path) -> Result<StageResult> {
    super::config_checks::require_test_split(&env.cfg, &env.splits)?;
    let dc = env.cfg.distill.clone();
    if let Some(done) = super::resume_check::finished(env, STAGE, dc.epochs)? {
        return Ok(done);
    }
    let tmeta = ModelMeta::read(teacher_path)?;
    if tmeta.num_classes != env.num_classes() {
        return Err(Error::Checkpoint {
            path: teacher_path.to_path_buf(),
            msg: format!(
                "the teacher predicts {} classes, the dataset has {}",
                tmeta.num_classes,
                env.num_classes()
            ),
        });
    }
    if tmeta.in_channels != env.channels() {
        return Err(Error::Checkpoint {
            path: teacher_path.to_path_buf(),
            msg: format!(
                "the teacher reads {}-channel images, the dataset has {}",
                tmeta.in_channels,
                env.channels()
            ),
        });
    }
    super::ckpt_check::check(teacher_path, &tmeta, |_| true, true)?;
    let mut tstore = env.store(2);
    let teacher = Classifier::new(&mut tstore, tmeta.clone())?;
    checkpoint::load(&mut tstore, teacher_path)?;
    tstore.to(env.device, crate::DType::F32)?;

    let smeta = ModelMeta {
        stage: STAGE.into(),
        model: env
            .cfg
            .student_model
            .clone()
            .unwrap_or_else(|| tmeta.model.clone()),
        image_size: env.image_size,
        in_channels: env.channels(),
        proj_layers: tmeta.proj_layers,
        proj_dim: tmeta.proj_dim,
        proj_layer: 0,
        num_classes: env.num_classes(),
        stem_pool_padding: tmeta.stem_pool_padding,
    };
    let mut store = env.store(3);
    let student = Classifier::new(&mut store, smeta.clone())?;
    store.to(env.device, crate::DType::F32)?;

    let batch = dc.batch_size.min(env.splits.train.len());
    if env.comm.is_some() && dc.alpha < 1.0 {
        return Err(Error::Config(format!(
            "--alpha {} mixes in labelled batches, which are not shared out over processes yet: \
             a multi-process distillation needs --alpha 1",
            dc.alpha
        )));
    }
    let loader = dist_run::ShardedLoader::new(
        env,
        env.splits.train.clone(),
        Arc::new(FinetuneAugment::new(env.augment_config())?),
        env.loader_config(batch, 1, None, true),
    )?;
    let per_epoch = loader.batches_per_epoch();
    let total = super::guard::total_steps(STAGE, dc.epochs, per_epoch)?;
    let sched = schedule(&dc.lr_scaling, dc.lr, batch, dc.warmup, total)?;
    let mut opt = lars(dc.weight_decay);
    let spec = DistillSpec {
        alpha: dc.alpha,
        tau: dc.temperature,
    };
    let (state_path, mut pos, _) = env.resume_state(STAGE, &mut store, &mut opt)?;
    dist_run::start(env, &mut [&mut store], &pos)?;
    let mut labelled = (dc.alpha < 1.0)
        .then(|| LabelledStream::new(env, env.cfg.finetune.batch_size))
        .transpose()?;
    let progress = Progress::new(STAGE, total, dc.epochs, env.cfg.progress_every)
        .shown_if(env.run.is_writer());
    let started = Instant::now();
    let policy = env.activations();
    let epochs = EpochLoop::new(env, STAGE, dc.epochs, per_epoch, state_path);
    for epoch in epochs.epochs(&pos) {
        let skip = epochs.skip(&pos, epoch);
        if let Some(l) = labelled.as_mut() {
            l.restart(epoch);
            // A mid-epoch resume draws the labelled batches the skipped steps drew.
            for _ in 0..skip {
                l.next_batch()?;
            }
        }
        for b in loader.epoch(epoch as u64)?.skip(skip) {
            epochs.before_step(env, &pos);
            let b = b?;
            let t0 = Instant::now();
            let x = b.views[0].to_device(env.device)?;
            let teacher_logits = {
                let mut t = Tape::inference();
                let xv = t.constant(x.clone());
                teacher
                    .logits(&mut policy.ctx(&mut t, &mut tstore, false), &xv)?
                    .value()
                    .clone()
            };
            let lr = sched.lr_at(pos.step);
            let mut tape = policy.tape();
            let xv = tape.constant(x);
            let logits =
                student.logits(&mut dist_run::ctx(env, policy, &mut tape, &mut store), &xv)?;
            // Only the labelled subset's labels enter the loss, from batches of their own.
            let lb = labelled.as_mut().map(|l| l.next_batch()).transpose()?;
            let l_logits = match &lb {
                Some(lb) => {
                    let xl = tape.constant(lb.views[0].to_device(env.device)?);
                    Some(student.logits(&mut policy.ctx(&mut tape, &mut store, true), &xl)?)
                }
                None => None,
            };
            let l_pair = l_logits
                .as_ref()
                .zip(lb.as_ref().map(|b| b.labels.as_slice()));
            let loss = mixed_loss(&mut tape, &logits, &teacher_logits, l_pair, spec)?;
            let loss = dist_run::rank_loss(env, &mut tape, &loss, b.labels.len(), batch)?;
            let info = StepInfo {
                stage: STAGE,
                epoch,
                lr,
                images: b.labels.len(),
                started: t0,
                progress: &progress,
            };
            finish_step(env, tape, &loss, &mut store, &mut opt, &mut pos, info)?;
            epochs.after_step(env, &store, &opt, &pos, || Ok(Vec::new()))?;
        }
        epochs.end_epoch(env, epoch, &store, &opt, &mut pos, Vec::new())?;
    }
    let complete = epochs.complete(&pos);
    epochs.finish();
    progress.finish();
    let extra = json!({ "teacher": tmeta.model, "alpha": dc.alpha, "temperature": dc.temperature });
    finish_classifier(
        env, STAGE, &student, &mut store, &smeta, complete, started, extra,
    )
}
