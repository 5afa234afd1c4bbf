//! One LARS step and one EMA update over the parameter list of a whole pretraining network
//! (encoder + head): `Lars::step` / `Ema::update` (on the GPU two multi-tensor launches / one)
//! against the same arithmetic as separate ops per tensor. On the CPU both are per tensor.

mod common;

use common::{data, run_case, Case, Work};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use simclr::ops::elementwise::{add_forward, scale_forward, sub_forward};
use simclr::optim::lars::{lars_norms, trust_ratio};
use simclr::optim::{BufferRule, Ema, Lars, LarsConfig};
use simclr::params::{ParamId, ParamStore};
use simclr::{DType, Device, Result, Tensor};
use std::collections::HashMap;

const LR: f64 = 0.3;
const EMA_MOMENTUM: f64 = 0.999;

/// r50_1x_sk1 (35 M) everywhere; r152_3x_sk1 (795 M) on the GPU only.
fn models(device: Device) -> Vec<&'static str> {
    match device {
        Device::Cpu => vec!["r50_1x_sk1"],
        Device::Cuda(_) => vec!["r50_1x_sk1", "r152_3x_sk1"],
    }
}

struct LarsState {
    store: ParamStore,
    /// Every trainable tensor's gradient, set again before each step (a step clears them).
    grads: Vec<(ParamId, Tensor)>,
    lars: Lars,
    /// Velocities of the per-tensor path.
    velocity: HashMap<ParamId, Tensor>,
}

fn lars_state(model: &str, device: Device) -> Result<LarsState> {
    let store = data::param_store(model, device, 21)?;
    let mut grads = Vec::new();
    for id in store.ids().filter(|&id| store.is_trainable(id)) {
        grads.push((id, scale_forward(store.value(id)?, 0.01)?));
    }
    Ok(LarsState {
        store,
        grads,
        lars: Lars::new(LarsConfig::default()),
        velocity: HashMap::new(),
    })
}

fn lars_fused(s: &mut LarsState) -> Result<()> {
    for (id, g) in &s.grads {
        s.store.accumulate_grad(*id, g)?;
    }
    s.lars.step(&mut s.store, LR)
}

/// `Lars::step`'s arithmetic one op at a time: every norm, then every update.
fn lars_unfused(s: &mut LarsState) -> Result<()> {
    let cfg = s.lars.config;
    let excluded = |st: &ParamStore, id: ParamId| (cfg.exclude)(st.name(id), st.kind(id));
    let mut decayed = Vec::with_capacity(s.grads.len());
    for (id, g) in &s.grads {
        decayed.push(if excluded(&s.store, *id) {
            g.clone()
        } else {
            add_forward(g, &scale_forward(s.store.value(*id)?, cfg.weight_decay)?)?
        });
    }
    let mut items = Vec::new();
    for ((id, _), g) in s.grads.iter().zip(&decayed) {
        if !excluded(&s.store, *id) {
            items.push((s.store.value(*id)?, g, 0.0));
        }
    }
    let mut norms = lars_norms(&items)?.into_iter();
    for ((id, _), g) in s.grads.iter().zip(&decayed) {
        let trust = match excluded(&s.store, *id) {
            true => 1.0,
            false => match norms.next() {
                Some((wn, gn)) => trust_ratio(cfg.eta, wn, gn),
                None => 1.0,
            },
        };
        let step = scale_forward(g, LR * trust)?;
        let v = match s.velocity.get(id) {
            Some(v) => add_forward(&scale_forward(v, cfg.momentum)?, &step)?,
            None => step,
        };
        let w = sub_forward(s.store.value(*id)?, &v)?;
        s.store.set_value(*id, w)?;
        s.velocity.insert(*id, v);
    }
    Ok(())
}

/// Per parameter: the norm phase reads w and g (8 B, tensors LARS does not skip); the update
/// reads w, g, v and writes w, v (20 B). f32 throughout; ~10 FLOP per parameter. Also the
/// shapes for the PyTorch script.
fn lars_case(model: &str, meta: &ParamStore) -> (Work, Value) {
    let cfg = LarsConfig::default();
    let (mut all, mut included, mut tensors) = (0.0, 0.0, Vec::new());
    for id in meta.ids().filter(|&id| meta.is_trainable(id)) {
        let shape = &meta.entry(id).shape;
        let n = shape.iter().product::<usize>() as f64;
        let skip = (cfg.exclude)(meta.name(id), meta.kind(id));
        all += n;
        if !skip {
            included += n;
        }
        tensors.push(json!([shape, skip]));
    }
    let work = Work {
        flops: 10.0 * all,
        bytes: 20.0 * all + 8.0 * included,
    };
    let spec = json!({"kernel": "lars", "model": model, "lr": LR, "momentum": cfg.momentum,
        "eta": cfg.eta, "weight_decay": cfg.weight_decay, "params": meta.num_trainable(),
        "tensors": tensors});
    (work, spec)
}

struct EmaState {
    target: ParamStore,
    online: ParamStore,
    ema: Ema,
}

fn ema_state(model: &str, device: Device) -> Result<EmaState> {
    Ok(EmaState {
        target: data::param_store(model, device, 31)?,
        online: data::param_store(model, device, 32)?,
        ema: Ema::new(EMA_MOMENTUM, BufferRule::Copy)?,
    })
}

/// The update one tensor at a time: target ← m·target + (1 − m)·online; buffers copied.
fn ema_unfused(s: &mut EmaState) -> Result<()> {
    let m = s.ema.momentum;
    let ids: Vec<ParamId> = s.target.ids().collect();
    for id in ids {
        let o = s.online.value(id)?;
        let new = if s.target.is_trainable(id) {
            add_forward(
                &scale_forward(s.target.value(id)?, m)?,
                &scale_forward(o, 1.0 - m)?,
            )?
        } else {
            o.clone()
        };
        s.target.set_value(id, new)?;
    }
    Ok(())
}

/// Every tensor (buffers too): read target and online, write target, 12 B and 3 FLOP per value.
fn ema_case(model: &str, meta: &ParamStore) -> (Work, Value) {
    let mut n = 0.0;
    let mut tensors = Vec::new();
    for e in meta.entries() {
        n += e.shape.iter().product::<usize>() as f64;
        tensors.push(json!([e.shape, e.kind.trainable()]));
    }
    let work = Work {
        flops: 3.0 * n,
        bytes: 12.0 * n,
    };
    let spec = json!({"kernel": "ema", "model": model, "momentum": EMA_MOMENTUM,
        "params": meta.num_trainable(), "tensors": tensors});
    (work, spec)
}

type Run<S> = fn(&mut S) -> Result<()>;

fn bench(c: &mut Criterion) {
    for device in common::devices("optim") {
        let dev = common::device_name(device);
        let mut lars = c.benchmark_group(format!("lars-{dev}"));
        let paths: [(&str, Run<LarsState>); 2] = [("fused", lars_fused), ("unfused", lars_unfused)];
        for model in models(device) {
            let (work, spec) = match data::meta_store(model) {
                Ok(meta) => lars_case(model, &meta),
                Err(e) => return println!("lars-{dev}/{model}: skipped: {e}"),
            };
            for (function, run) in paths {
                let case = Case {
                    group: format!("lars-{dev}"),
                    function,
                    param: model.to_string(),
                    device,
                    dtype: DType::F32,
                    work,
                    spec: spec.clone(),
                };
                run_case(&mut lars, case, || lars_state(model, device), run);
            }
        }
        lars.finish();

        let mut ema = c.benchmark_group(format!("ema-{dev}"));
        let fused: Run<EmaState> = |s| s.ema.update(&mut s.target, &s.online).map(drop);
        let paths: [(&str, Run<EmaState>); 2] = [("fused", fused), ("unfused", ema_unfused)];
        for model in models(device) {
            let (work, spec) = match data::meta_store(model) {
                Ok(meta) => ema_case(model, &meta),
                Err(e) => return println!("ema-{dev}/{model}: skipped: {e}"),
            };
            for (function, run) in paths {
                let case = Case {
                    group: format!("ema-{dev}"),
                    function,
                    param: model.to_string(),
                    device,
                    dtype: DType::F32,
                    work,
                    spec: spec.clone(),
                };
                run_case(&mut ema, case, || ema_state(model, device), run);
            }
        }
        ema.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
