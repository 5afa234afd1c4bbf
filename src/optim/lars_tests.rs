use super::*;
use crate::params::Init;
use crate::testing::{assert_close, load_fixture, tolerance};
use crate::DType;

const PARAMS: [(&str, ParamKind); 7] = [
    ("conv.weight", ParamKind::Weight),
    ("fc.weight", ParamKind::Weight),
    ("fc.bias", ParamKind::Bias),
    ("bn.gamma", ParamKind::BnGamma),
    ("bn.beta", ParamKind::BnBeta),
    ("zero.weight", ParamKind::Weight),
    ("nograd.weight", ParamKind::Weight),
];

fn fixture() -> HashMap<String, Tensor> {
    load_fixture(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/method_lars.safetensors"),
    )
}

fn store_at(f: &HashMap<String, Tensor>, case: &str, dt: DType) -> ParamStore {
    let mut s = ParamStore::new(dt, 0);
    for (name, kind) in PARAMS {
        let w = f[&format!("{case}.{name}.w0")].to_dtype(dt).unwrap();
        let id = s.add(name, w.shape(), kind, Init::Zeros).unwrap();
        s.set_value(id, w).unwrap();
    }
    s
}

fn set_grads(s: &mut ParamStore, f: &HashMap<String, Tensor>, case: &str, step: usize) {
    for (name, _) in PARAMS {
        let id = s.find(name).unwrap();
        let g = f[&format!("{case}.{name}.g{step}")]
            .to_dtype(s.dtype())
            .unwrap();
        s.accumulate_grad(id, &g).unwrap();
    }
}

/// k = the largest tensor (its norms are the longest reductions); depth = 2 steps.
fn check_step(s: &ParamStore, lars: &Lars, f: &HashMap<String, Tensor>, case: &str, step: usize) {
    let tol = tolerance(s.dtype(), 12, 2) * if s.dtype() == DType::F32 { 2.0 } else { 1.0 };
    let state: HashMap<String, Tensor> = lars.state(s).into_iter().collect();
    assert_eq!(state.len(), PARAMS.len());
    for (name, _) in PARAMS {
        let what = format!("{case} step {step} {name} ({})", s.dtype().name());
        let w = s.value(s.find(name).unwrap()).unwrap();
        assert_close(
            &format!("{what} w"),
            w,
            &f[&format!("{case}.{name}.w{step}")],
            tol,
        );
        let v = &state[&format!("lars.velocity.{name}")];
        assert_close(
            &format!("{what} v"),
            v,
            &f[&format!("{case}.{name}.v{step}")],
            tol,
        );
    }
}

fn config(hyper: &[f64]) -> LarsConfig {
    LarsConfig {
        weight_decay: hyper[2],
        momentum: hyper[3],
        eta: hyper[4],
        ..LarsConfig::default()
    }
}

#[test]
fn two_steps_match_pytorch() {
    let f = fixture();
    for case in ["wd", "nowd"] {
        let hyper = f[&format!("{case}.hyper")].to_vec_f64().unwrap();
        for dt in [DType::F64, DType::F32] {
            let mut s = store_at(&f, case, dt);
            let mut lars = Lars::new(config(&hyper));
            for step in 1..=2 {
                set_grads(&mut s, &f, case, step);
                lars.step(&mut s, hyper[step - 1]).unwrap();
                assert!(s.grad(ParamId(0)).is_none(), "gradients are cleared");
                check_step(&s, &lars, &f, case, step);
            }
        }
    }
}

#[test]
fn state_round_trip_resumes_exactly() {
    let f = fixture();
    let hyper = f["wd.hyper"].to_vec_f64().unwrap();
    let mut s = store_at(&f, "wd", DType::F64);
    let mut first = Lars::new(config(&hyper));
    set_grads(&mut s, &f, "wd", 1);
    first.step(&mut s, hyper[0]).unwrap();
    let saved: HashMap<String, Tensor> = first.state(&s).into_iter().collect();
    let mut resumed = Lars::new(config(&hyper));
    resumed.load_state(&s, &saved).unwrap();
    set_grads(&mut s, &f, "wd", 2);
    resumed.step(&mut s, hyper[1]).unwrap();
    check_step(&s, &resumed, &f, "wd", 2);
}

#[test]
fn load_state_rejects_unknown_names_and_shapes() {
    let f = fixture();
    let s = store_at(&f, "wd", DType::F64);
    let mut lars = Lars::new(LarsConfig::default());
    let bad_name = HashMap::from([("lars.velocity.nope".to_string(), f["wd.fc.bias.w0"].clone())]);
    let e = lars.load_state(&s, &bad_name).unwrap_err().to_string();
    assert!(e.contains("lars") && e.contains("nope"), "{e}");
    let bad_shape = HashMap::from([(
        "lars.velocity.fc.bias".to_string(),
        f["wd.bn.gamma.w0"].clone(),
    )]);
    assert!(lars.load_state(&s, &bad_shape).is_err());
    // Unrelated tensors of a checkpoint are ignored.
    let other = HashMap::from([("fc.bias".to_string(), f["wd.bn.gamma.w0"].clone())]);
    lars.load_state(&s, &other).unwrap();
    assert!(lars.state(&s).is_empty());
}

#[test]
fn exclusion_rule_is_configurable() {
    let f = fixture();
    let hyper = f["wd.hyper"].to_vec_f64().unwrap();
    let mut s = store_at(&f, "wd", DType::F64);
    let cfg = LarsConfig {
        exclude: |_, _| false,
        ..config(&hyper)
    };
    let mut lars = Lars::new(cfg);
    set_grads(&mut s, &f, "wd", 1);
    lars.step(&mut s, hyper[0]).unwrap();
    // fc.bias now gets the trust ratio (η·‖w‖/‖g‖ ≪ 1), so it moves far less than the reference.
    let id = s.find("fc.bias").unwrap();
    let w0 = f["wd.fc.bias.w0"].to_vec_f64().unwrap();
    let moved: f64 = s
        .value(id)
        .unwrap()
        .to_vec_f64()
        .unwrap()
        .iter()
        .zip(&w0)
        .map(|(a, b)| (a - b).abs())
        .sum();
    let ref_moved: f64 = f["wd.fc.bias.w1"]
        .to_vec_f64()
        .unwrap()
        .iter()
        .zip(&w0)
        .map(|(a, b)| (a - b).abs())
        .sum();
    assert!(moved < 0.1 * ref_moved, "{moved} vs {ref_moved}");
}

#[test]
fn zero_norms_give_unit_trust() {
    assert_eq!(trust_ratio(0.001, 0.0, 2.0), 1.0);
    assert_eq!(trust_ratio(0.001, 2.0, 0.0), 1.0);
    assert!((trust_ratio(0.001, 2.0, 4.0) - 0.0005).abs() < 1e-18);
}
