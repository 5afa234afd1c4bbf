//! Linear evaluation: the pretrained encoder is frozen (BN in eval mode, nothing recorded), its
//! representations of every training image (evaluation transform) are computed once, and a
//! linear classifier is trained on them with all the labels, or on a class-balanced labelled
//! subset (`linear_eval.label_fraction`, e.g. the paper's 1% and 10% tables).

use super::common::{lars, schedule, Env, EvalResult};
use super::model::{self, Classifier, ModelMeta};
use super::progress::{Progress, Report};
use super::run_dir::step_record;
use super::StageResult;
use crate::autograd::Tape;
use crate::data::{Dataset, EvalTransform, Loader};
use crate::nn::Ctx;
use crate::params::ParamStore;
use crate::{checkpoint, ops, Result, Rng, Tensor};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub const STAGE: &str = "linear-eval";

/// Encoder representations and labels of a whole split.
fn features(
    env: &Env,
    clf: &Classifier,
    store: &mut ParamStore,
    ds: Arc<dyn Dataset>,
    indices: Option<Vec<usize>>,
) -> Result<(Vec<f32>, Vec<usize>, usize)> {
    // In a multi-process job each rank encodes its share, and the shares are gathered.
    let indices = super::dist_run::split_share(env, indices, ds.len())?;
    let loader = Loader::new(
        ds,
        Arc::new(EvalTransform::new(env.augment_config())?),
        env.loader_config(256, 1, indices, false),
    )?;
    // Known without rows too (a rank may have none).
    let dim = clf.encoder.out_dim();
    let (mut feats, mut labels) = (Vec::new(), Vec::new());
    for b in loader.epoch(0) {
        let b = b?;
        let mut t = Tape::inference();
        let x = t.constant(b.views[0].to_device(env.device)?);
        let f = clf
            .encoder
            .forward(&mut Ctx::new(&mut t, store, false), &x)?;
        feats.extend(f.value().to_vec_f32()?);
        labels.extend(b.labels);
    }
    let (feats, labels) = super::dist_run::gather_rows(env, feats, labels, dim)?;
    Ok((feats, labels, dim))
}

pub fn run(env: &mut Env, pretrained: &Path) -> Result<StageResult> {
    super::config_checks::require_test_split(&env.cfg, &env.splits)?;
    let lc = env.cfg.linear_eval.clone();
    let pm = ModelMeta::read(pretrained)?;
    model::check_model(&pm, Some(&env.cfg.model), pretrained)?;
    super::ckpt_check::check(pretrained, &pm, |n| n.starts_with("encoder."), false)?;
    let meta = ModelMeta {
        stage: STAGE.into(),
        proj_layer: 0,
        num_classes: env.num_classes(),
        ..pm
    };
    let mut store = env.store(4);
    let clf = Classifier::new(&mut store, meta.clone())?;
    checkpoint::load_matching(&mut store, pretrained, |n| n.starts_with("encoder."))?;
    store.to(env.device, crate::DType::F32)?;
    let started = Instant::now();
    let subset = match lc.label_fraction {
        f if f < 1.0 => Some(crate::data::class_balanced_subset(
            env.splits.train.as_ref(),
            f,
            env.cfg.seed,
        )?),
        _ => None,
    };
    let (train_x, train_y, dim) =
        features(env, &clf, &mut store, env.splits.train.clone(), subset)?;
    let (test_x, test_y, _) = features(env, &clf, &mut store, env.splits.test.clone(), None)?;

    // Only the classifier trains: a store of its two tensors, named as in the full model.
    let mut head = ParamStore::new(crate::DType::F32, env.cfg.seed.wrapping_add(5));
    let fc = crate::nn::Linear::new(&mut head, "classifier", dim, meta.num_classes, true)?;
    head.to(env.device, crate::DType::F32)?;
    let n = train_y.len();
    let batch = lc.batch_size.min(n);
    let per_epoch = n / batch;
    let total = super::guard::total_steps(STAGE, lc.epochs, per_epoch)?;
    let sched = schedule(&lc.lr_scaling, lc.lr, batch, lc.warmup, total)?;
    let mut opt = lars(lc.weight_decay);
    let progress = Progress::new(STAGE, total, lc.epochs, env.cfg.progress_every)
        .shown_if(env.run.is_writer());
    let mut step = 0;
    for epoch in 0..lc.epochs {
        let mut order: Vec<usize> = (0..n).collect();
        Rng::derive(env.cfg.seed, 0x6c69_6e00 + epoch as u64).shuffle(&mut order);
        for chunk in order.chunks_exact(batch) {
            let xb: Vec<f32> = chunk
                .iter()
                .flat_map(|&i| train_x[i * dim..(i + 1) * dim].iter().copied())
                .collect();
            let yb: Vec<usize> = chunk.iter().map(|&i| train_y[i]).collect();
            let lr = sched.lr_at(step);
            let t0 = std::time::Instant::now();
            let mut tape = Tape::new();
            let x = tape.constant(Tensor::from_vec(xb, &[batch, dim])?.to_device(env.device)?);
            let logits = fc.forward(&mut Ctx::new(&mut tape, &mut head, true), &x)?;
            let loss = ops::cross_entropy(&mut tape, &logits, &yb)?;
            let lv = loss.value().item()?;
            super::guard::check_loss(STAGE, step, epoch, lv, lr)?;
            tape.backward(&loss, &mut head)?;
            opt.step(&mut head, lr)?;
            step += 1;
            let ips = batch as f64 / t0.elapsed().as_secs_f64();
            if progress.log_due(step, env.cfg.log_every) {
                env.run.log(step_record(STAGE, epoch, step, lv, lr, ips))?;
            }
            progress.update(Report {
                epoch,
                step,
                loss: lv,
                lr,
                images_per_s: ips,
            });
        }
    }
    progress.finish();
    // Test accuracy of the linear classifier on the frozen features.
    let mut t = Tape::inference();
    let x = t.constant(Tensor::from_vec(test_x, &[test_y.len(), dim])?.to_device(env.device)?);
    let logits = fc.forward(&mut Ctx::new(&mut t, &mut head, false), &x)?;
    let ev = accuracy(logits.value(), &test_y)?;
    // The saved model is the whole classifier: frozen encoder + trained linear layer.
    for id in head.ids() {
        let target = store
            .find(head.name(id))
            .expect("classifier tensors exist in the model");
        store.set_value(target, head.value(id)?.clone())?;
    }
    if env.run.is_writer() {
        model::save(&store, &meta, &env.path("linear-eval.safetensors"))?;
    }
    env.run.log(json!({ "stage": STAGE, "eval": "test", "loss": ev.loss, "top1": ev.top1, "top5": ev.top5 }))?;
    let summary = json!({ "model": meta.model, "top1": ev.top1, "top5": ev.top5, "labelled": n, "seconds": started.elapsed().as_secs_f64(), "complete": true, "distributed": super::dist_run::summary(env) });
    env.run.set_summary(STAGE, summary.clone())?;
    println!(
        "{STAGE}: top-1 {:.2}%, top-5 {:.2}%",
        100.0 * ev.top1,
        100.0 * ev.top5
    );
    Ok(StageResult {
        stage: STAGE,
        summary,
        top1: Some(ev.top1),
        top5: Some(ev.top5),
        complete: true,
    })
}

fn accuracy(logits: &Tensor, labels: &[usize]) -> Result<EvalResult> {
    let (loss, _) = ops::loss::cross_entropy_forward(logits, labels)?;
    let v = logits.to_vec_f64()?;
    let c = logits.last_dim();
    let k = 5.min(c);
    let (mut t1, mut t5) = (0usize, 0usize);
    for (row, &y) in v.chunks(c).zip(labels) {
        let (h1, hk) = super::guard::hits(row, y, k);
        t1 += h1 as usize;
        t5 += hk as usize;
    }
    let n = labels.len().max(1) as f64;
    Ok(EvalResult {
        top1: t1 as f64 / n,
        top5: t5 as f64 / n,
        loss: loss.item()?,
    })
}
