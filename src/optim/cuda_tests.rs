//! CPU vs CUDA parity of the multi-tensor optimizer steps: LARS (norms and updates of every
//! tensor in two launches) and the EMA of the momentum network (one launch), on the same random
//! stores. Without a usable GPU each test prints `skipped: <reason>`.

use crate::ops::elementwise as ew;
use crate::optim::ema::{BufferRule, Ema};
use crate::optim::lars::{Lars, LarsConfig};
use crate::params::{Init, ParamKind, ParamStore};
use crate::testing::device::{check, device_test, randn};
use crate::testing::fresh_seed;
use crate::{DType, Device, Rng, Tensor};

fn sgd_update_parity(dev: Device) {
    let mut rng = Rng::new(fresh_seed("sgd"));
    let (lr, mom, wd) = (0.1, 0.9, 1e-4);
    let w = randn(&[1000], DType::F32, &mut rng);
    let g1 = randn(&[1000], DType::F32, &mut rng);
    let g2 = randn(&[1000], DType::F32, &mut rng);
    // CPU reference of two momentum steps: v = g + wd·w (then m·v + g + wd·w), w −= lr·v.
    let step = |w: &Tensor, v: Option<&Tensor>, g: &Tensor| {
        let d = ew::add_forward(g, &ew::scale_forward(w, wd).unwrap()).unwrap();
        let v = match v {
            Some(v) => ew::add_forward(&ew::scale_forward(v, mom).unwrap(), &d).unwrap(),
            None => d,
        };
        (
            ew::sub_forward(w, &ew::scale_forward(&v, lr).unwrap()).unwrap(),
            v,
        )
    };
    let (w1, v1) = step(&w, None, &g1);
    let (w2, _) = step(&w1, Some(&v1), &g2);
    let mut gw = w.to_device(dev).unwrap();
    let shared = gw.clone(); // in-place updates must not write through to other holders
    let mut gv = Tensor::zeros(&[1000], DType::F32, dev).unwrap();
    for (i, g) in [&g1, &g2].into_iter().enumerate() {
        let gg = g.to_device(dev).unwrap();
        crate::optim::cuda::sgd_update(&mut gw, &gg, Some(&mut gv), lr, mom, wd, i == 0).unwrap();
    }
    check("sgd_update", DType::F32, &gw, &w2, 2, 2);
    assert_eq!(shared.to_vec_f64().unwrap(), w.to_vec_f64().unwrap());
}
device_test!(sgd_update_parity);

/// Weights (one spanning several 16K-element chunks), a zero-initialised weight (trust 1),
/// and the excluded kinds; BN running statistics when `buffers`.
fn store(seed: u64, buffers: bool) -> ParamStore {
    let mut s = ParamStore::new(DType::F32, seed);
    let normal = Init::Normal { std: 0.5 };
    s.add("conv.weight", &[64, 3, 3, 3], ParamKind::Weight, normal)
        .unwrap();
    s.add("big.weight", &[40_000], ParamKind::Weight, normal)
        .unwrap();
    s.add("zero.weight", &[10], ParamKind::Weight, Init::Zeros)
        .unwrap();
    s.add("fc.bias", &[7], ParamKind::Bias, normal).unwrap();
    s.add("bn.gamma", &[64], ParamKind::BnGamma, Init::Ones)
        .unwrap();
    s.add("bn.beta", &[64], ParamKind::BnBeta, normal).unwrap();
    if buffers {
        s.add("bn.running_mean", &[64], ParamKind::BnRunningMean, normal)
            .unwrap();
    }
    s
}

fn compare(what: &str, gpu_store: &ParamStore, cpu: &ParamStore, k: usize, depth: usize) {
    for id in cpu.ids() {
        let name = cpu.name(id);
        let got = gpu_store.value(gpu_store.find(name).unwrap()).unwrap();
        let want = cpu.value(id).unwrap();
        check(&format!("{what} {name}"), DType::F32, got, want, k, depth);
    }
}

/// How the GPU steps of [`lars_parity`] take their rate.
#[derive(Clone, Copy, PartialEq)]
enum Rates {
    /// 0.5 at every step, a launch parameter.
    Fixed,
    /// A different rate each step, read from the device schedule (`step_scheduled`), whose
    /// counter starts past a first entry no step may use.
    Scheduled,
}

fn rate(rates: Rates, step: usize) -> f64 {
    match rates {
        Rates::Fixed => 0.5,
        Rates::Scheduled => [0.5, 0.1, 0.3, 0.05][step % 4],
    }
}

/// `steps` LARS steps on a CPU store and its GPU copy (both from `build`) with the same random
/// gradients; weights compared after each step, velocities after each step when
/// `state_each_step` (reading them shares the buffers, so the next GPU step re-uploads its
/// table) or else once at the end (every step after the first reuses the resident table).
fn lars_parity(
    dev: Device,
    name: &str,
    build: impl Fn(u64) -> ParamStore,
    steps: usize,
    state_each_step: bool,
    rates: Rates,
) {
    let seed = fresh_seed(name);
    let mut rng = Rng::new(seed);
    let (mut cpu, mut gs) = (build(seed), build(seed));
    gs.to(dev, DType::F32).unwrap();
    let config = LarsConfig {
        weight_decay: 1e-3,
        ..LarsConfig::default()
    };
    let (mut lc, mut lg) = (Lars::new(config), Lars::new(config));
    let table: Vec<f64> = std::iter::once(1e3)
        .chain((0..steps).map(|s| rate(rates, s)))
        .collect();
    let schedule = crate::optim::DeviceLr::new(dev, &table, 1).unwrap();
    for step in 0..steps {
        for id in cpu.ids().collect::<Vec<_>>() {
            let g = randn(cpu.value(id).unwrap().shape(), DType::F32, &mut rng);
            cpu.accumulate_grad(id, &g).unwrap();
            let gid = gs.find(cpu.name(id)).unwrap();
            gs.accumulate_grad(gid, &g.to_device(dev).unwrap()).unwrap();
        }
        lc.step(&mut cpu, rate(rates, step)).unwrap();
        match rates {
            Rates::Fixed => lg.step(&mut gs, 0.5).unwrap(),
            Rates::Scheduled => lg.step_scheduled(&mut gs, &schedule).unwrap(),
        }
        compare(&format!("{name} step {step}"), &gs, &cpu, 40_000, step + 2);
        if state_each_step || step + 1 == steps {
            for ((v_name, v), (_, want)) in lg.state(&gs).into_iter().zip(lc.state(&cpu)) {
                let what = format!("{name} step {step} {v_name}");
                check(&what, DType::F32, &v, &want, 40_000, step + 2);
            }
        }
    }
}

fn lars_multi_tensor_matches_cpu(dev: Device) {
    let build = |seed| store(seed, false);
    lars_parity(dev, "lars_multi_tensor", build, 3, true, Rates::Fixed);
}
device_test!(lars_multi_tensor_matches_cpu);

/// The rate read on the device from the schedule, a different one each step.
fn lars_device_schedule_matches_cpu(dev: Device) {
    let build = |seed| store(seed, false);
    lars_parity(
        dev,
        "lars_device_schedule",
        build,
        4,
        false,
        Rates::Scheduled,
    );
}
device_test!(lars_device_schedule_matches_cpu);

/// Steps that reuse the resident tensor table, over more tensors than one gradient-binding
/// launch holds (16).
fn lars_resident_table_matches_cpu_over_steps(dev: Device) {
    let build = |seed| {
        let mut s = store(seed, false);
        for i in 0..19 {
            let kind = if i % 3 == 0 {
                ParamKind::Bias
            } else {
                ParamKind::Weight
            };
            let init = Init::Normal { std: 0.3 };
            s.add(&format!("extra{i}.p"), &[5 + 37 * i], kind, init)
                .unwrap();
        }
        s
    };
    lars_parity(dev, "lars_resident_table", build, 4, false, Rates::Fixed);
}
device_test!(lars_resident_table_matches_cpu_over_steps);

fn ema_multi_tensor_matches_cpu(dev: Device) {
    let seed = fresh_seed("ema_multi_tensor");
    for rule in [BufferRule::Copy, BufferRule::Ema] {
        let ema = Ema::new(0.99, rule).unwrap();
        let online = store(seed, true);
        let mut target = store(seed ^ 1, true);
        let mut g_online = store(seed, true);
        let mut g_target = store(seed ^ 1, true);
        g_online.to(dev, DType::F32).unwrap();
        g_target.to(dev, DType::F32).unwrap();
        for _ in 0..2 {
            ema.update(&mut target, &online).unwrap();
            ema.update(&mut g_target, &g_online).unwrap();
        }
        compare(&format!("ema {rule:?}"), &g_target, &target, 2, 2);
        let rm = |s: &ParamStore| {
            s.value(s.find("bn.running_mean").unwrap())
                .unwrap()
                .to_device(Device::Cpu)
                .unwrap()
                .to_vec_f64()
                .unwrap()
        };
        if rule == BufferRule::Copy {
            assert_eq!(rm(&g_target), rm(&online), "buffers are copied exactly");
        }
    }
}
device_test!(ema_multi_tensor_matches_cpu);
