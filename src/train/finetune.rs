//! Fine-tuning on a class-balanced labelled subset, from a pretrained checkpoint with the
//! projection head kept up to layer k; or, with no checkpoint, the supervised-from-scratch
//! baseline on the same subset. Crop + flip augmentation, cross-entropy, LARS.

use super::common::{evaluate, finish_step, label_subset, lars, schedule, Env, StepInfo};
use super::epoch_loop::EpochLoop;
use super::model::{self, Classifier, ModelMeta};
use super::progress::Progress;
use super::StageResult;
use crate::checkpoint;
use crate::data::FinetuneAugment;
use crate::{ops, Error, Result};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The labelled indices, written beside the checkpoint so the subset can be audited and reused.
pub fn labelled_indices(env: &Env) -> Result<Vec<usize>> {
    let f = &env.cfg.finetune;
    let idx = label_subset(
        env.splits.train.as_ref(),
        f.label_fraction,
        f.labels_per_class,
        env.cfg.seed,
    )?;
    let record = json!({
        "seed": env.cfg.seed, "label_fraction": f.label_fraction, "labels_per_class": f.labels_per_class,
        "count": idx.len(), "indices": idx,
    });
    if env.run.is_writer() {
        checkpoint::write_atomic(&env.path("labels.json"), record.to_string().as_bytes())?;
    }
    Ok(idx)
}

/// `stage` is "finetune" (with `pretrained`) or "supervised" (without).
pub fn run(env: &mut Env, stage: &'static str, pretrained: Option<&Path>) -> Result<StageResult> {
    super::config_checks::require_test_split(&env.cfg, &env.splits)?;
    let fc = env.cfg.finetune.clone();
    if let Some(done) = super::resume_check::finished(env, stage, fc.epochs)? {
        return Ok(done);
    }
    let proj_layer = if pretrained.is_some() {
        fc.from_layer
    } else {
        0
    };
    let mut meta = ModelMeta {
        stage: stage.into(),
        model: env.cfg.model.clone(),
        image_size: env.image_size,
        in_channels: env.channels(),
        proj_layers: env.cfg.pretrain.head_depth,
        proj_dim: env.cfg.pretrain.proj_dim,
        proj_layer,
        num_classes: env.num_classes(),
        stem_pool_padding: crate::nn::StemPoolPadding::Symmetric,
    };
    if let Some(p) = pretrained {
        let pm = ModelMeta::read(p)?;
        model::check_model(&pm, Some(&env.cfg.model), p)?;
        if pm.in_channels != meta.in_channels {
            return Err(Error::Checkpoint {
                path: p.to_path_buf(),
                msg: format!(
                    "pretrained on {}-channel images, but this dataset gives {}-channel images",
                    pm.in_channels, meta.in_channels
                ),
            });
        }
        let kept = |n: &str| n.starts_with("encoder.") || n.starts_with("head.");
        super::ckpt_check::check(p, &pm, kept, false)?;
        // Convolution weights do not depend on the image size: keep the checkpoint's stem (its
        // size decides which) and feed it this run's images.
        meta.image_size = super::resize::pretrained_size(&pm, env.image_size);
        (meta.proj_layers, meta.proj_dim) = (pm.proj_layers, pm.proj_dim);
        meta.stem_pool_padding = pm.stem_pool_padding;
        if proj_layer > pm.proj_layers {
            return Err(Error::Config(format!(
                "--ft-from-layer {proj_layer}: the pretrained head has {} layers",
                pm.proj_layers
            )));
        }
    }
    let mut store = env.store(1);
    let clf = Classifier::new(&mut store, meta.clone())?;
    if let Some(p) = pretrained {
        checkpoint::load_matching(&mut store, p, |n| {
            n.starts_with("encoder.") || n.starts_with("head.")
        })?;
    }
    store.to(env.device, crate::DType::F32)?;

    let indices = labelled_indices(env)?;
    let batch = fc.batch_size.min(indices.len());
    let loader = super::dist_run::ShardedLoader::new(
        env,
        env.splits.train.clone(),
        Arc::new(FinetuneAugment::new(env.augment_config())?),
        env.loader_config(batch, 1, Some(indices.clone()), true),
    )?;
    let per_epoch = loader.batches_per_epoch();
    let total = super::guard::total_steps(stage, fc.epochs, per_epoch)?;
    let sched = schedule(&fc.lr_scaling, fc.lr, batch, fc.warmup, total)?;
    let mut opt = lars(fc.weight_decay);
    let (state_path, mut pos, _) = env.resume_state(stage, &mut store, &mut opt)?;
    super::dist_run::start(env, &mut [&mut store], &pos)?;
    let progress = Progress::new(stage, total, fc.epochs, env.cfg.progress_every)
        .shown_if(env.run.is_writer());
    let started = Instant::now();
    let policy = env.activations();
    let epochs = EpochLoop::new(env, stage, fc.epochs, per_epoch, state_path);
    for epoch in epochs.epochs(&pos) {
        let skip = epochs.skip(&pos, epoch);
        for b in loader.epoch(epoch as u64)?.skip(skip) {
            epochs.before_step(env, &pos);
            let b = b?;
            let t0 = Instant::now();
            let lr = sched.lr_at(pos.step);
            let mut tape = policy.tape();
            let x = tape.constant(b.views[0].to_device(env.device)?);
            let logits = clf.logits(
                &mut super::dist_run::ctx(env, policy, &mut tape, &mut store),
                &x,
            )?;
            let loss = ops::cross_entropy(&mut tape, &logits, &b.labels)?;
            let loss = super::dist_run::rank_loss(env, &mut tape, &loss, b.labels.len(), batch)?;
            let info = StepInfo {
                stage,
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
    finish_classifier(
        env,
        stage,
        &clf,
        &mut store,
        &meta,
        complete,
        started,
        json!({ "labelled": indices.len() }),
    )
}

/// Evaluates a trained classifier on the test split, saves it, logs and summarises.
#[allow(clippy::too_many_arguments)]
pub fn finish_classifier(
    env: &mut Env,
    stage: &'static str,
    clf: &Classifier,
    store: &mut crate::params::ParamStore,
    meta: &ModelMeta,
    complete: bool,
    started: Instant,
    extra: serde_json::Value,
) -> Result<StageResult> {
    if !complete {
        return Ok(StageResult {
            stage,
            summary: json!({ "complete": false }),
            top1: None,
            top5: None,
            complete,
        });
    }
    let ev = evaluate(env, clf, store, env.splits.test.clone())?;
    if env.run.is_writer() {
        model::save(store, meta, &env.path(&format!("{stage}.safetensors")))?;
    }
    env.run.log(json!({ "stage": stage, "step": serde_json::Value::Null, "eval": "test", "loss": ev.loss, "top1": ev.top1, "top5": ev.top5 }))?;
    let mut summary = json!({
        "model": meta.model, "top1": ev.top1, "top5": ev.top5, "test_loss": ev.loss,
        "seconds": started.elapsed().as_secs_f64(), "complete": true,
        "distributed": super::dist_run::summary(env),
    });
    if let (Some(s), Some(e)) = (summary.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    env.run.set_summary(stage, summary.clone())?;
    println!(
        "{stage}: top-1 {:.2}%, top-5 {:.2}% on {} test images",
        100.0 * ev.top1,
        100.0 * ev.top5,
        env.splits.test.len()
    );
    Ok(StageResult {
        stage,
        summary,
        top1: Some(ev.top1),
        top5: Some(ev.top5),
        complete,
    })
}
