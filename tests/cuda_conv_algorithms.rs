//! `--conv-algorithms`: `deterministic` gives the same bits on every call; `fastest` may take a
//! nondeterministic algorithm (the emulated cuDNN models its atomics-based backward algorithms
//! as the fastest, and moves their last bits anew on every call, so there its results differ
//! from call to call); both stay within the dtype's tolerance of the CPU reference, each
//! policy's choices are kept apart on disk, switching back finds the deterministic choices
//! again, and the choice summary reports what the deterministic rule passed over, by cuDNN's
//! measured times. One test in its own process: the policy is the process's, and the cache
//! folder is set before any device chooses.
#![cfg(feature = "cuda")]

#[path = "cuda_common.rs"]
mod common;
use common::{both, check, gpu, randn};

use simclr::ops::conv2d::{
    choice_summary, conv2d_backward_input, conv2d_backward_weight, mark_choices,
    set_conv_algorithms, ConvAlgorithms,
};
use simclr::ops::Conv2dSpec;
use simclr::testing::{bits, fresh_seed};
use simclr::{DType, Rng};

#[test]
fn fastest_may_vary_from_call_to_call_and_deterministic_never_does() {
    let Some(dev) = gpu() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("SIMCLR_CACHE_DIR", dir.path());
    let mut rng = Rng::new(fresh_seed("conv_algorithms"));
    let (n, h, w, cin, cout, k) = (4, 12, 12, 16, 32, 3);
    let spec = Conv2dSpec::new(1, 1);
    for dt in [DType::BF16, DType::F32] {
        let (x, gx) = both(&randn(&[n, h, w, cin], dt, &mut rng), dev);
        let (wt, gw) = both(&randn(&[cout, k, k, cin], dt, &mut rng), dev);
        let (dy, gdy) = both(&randn(&[n, h, w, cout], dt, &mut rng), dev);
        let dx = conv2d_backward_input(&dy, &wt, x.shape(), &spec).unwrap();
        let dw = conv2d_backward_weight(&x, &dy, wt.shape(), &spec).unwrap();
        // Both backward results of one call, checked against the CPU reference.
        let run = |policy: ConvAlgorithms| {
            set_conv_algorithms(policy);
            let what = format!("{} {}", policy.name(), dt.name());
            let gdx = conv2d_backward_input(&gdy, &gw, x.shape(), &spec).unwrap();
            check(&format!("{what} dx"), dt, &gdx, &dx, k * k * cout, 1);
            let gdw = conv2d_backward_weight(&gx, &gdy, wt.shape(), &spec).unwrap();
            check(&format!("{what} dw"), dt, &gdw, &dw, n * h * w, 1);
            (bits(&gdx), bits(&gdw))
        };
        mark_choices(dev).unwrap();
        let first = run(ConvAlgorithms::Deterministic);
        let once = choice_summary(dev).unwrap().unwrap();
        for _ in 0..2 {
            assert!(
                run(ConvAlgorithms::Deterministic) == first,
                "{}: a deterministic choice changed bits between calls",
                dt.name()
            );
        }
        // cuDNN's measured times of this dtype's two backward choices (cached on disk, so
        // the summary holds after the memo is reused).
        let det = choice_summary(dev).unwrap().unwrap();
        assert_eq!(
            (det.policy, det.chosen, det.timed),
            (ConvAlgorithms::Deterministic, 2, 2)
        );
        assert!(
            det.chosen_ms >= det.fastest_ms && det.fastest_ms > 0.0,
            "{det}"
        );
        // Each call counts: three calls of each direction weigh three times one.
        assert_eq!((once.calls, det.calls), (2, 6), "{det}");
        for (three, one) in [
            (det.chosen_ms, once.chosen_ms),
            (det.fastest_ms, once.fastest_ms),
        ] {
            assert!(
                (three - 3.0 * one).abs() <= 1e-12 * three,
                "{det} against {once}"
            );
        }
        let fast: Vec<_> = (0..3).map(|_| run(ConvAlgorithms::Fastest)).collect();
        let fastest = choice_summary(dev).unwrap().unwrap();
        assert_eq!((fastest.chosen, fastest.passed_over), (2, 0), "{fastest}");
        assert_eq!(fastest.chosen_ms, fastest.fastest_ms, "{fastest}");
        if simclr::cuda::driver::is_emulated() {
            // The emulated cuDNN's fastest backward algorithms are its nondeterministic ones.
            let (dx_moved, dw_moved) = (
                fast.iter().any(|f| f.0 != fast[0].0),
                fast.iter().any(|f| f.1 != fast[0].1),
            );
            // ... and the deterministic rule passed them over, at a cost the summary shows.
            assert_eq!(det.passed_over, 2, "{det}");
            assert!(det.chosen_ms > det.fastest_ms, "{det}");
            assert!(
                dx_moved && dw_moved,
                "{}: under fastest, dx moved {dx_moved}, dw moved {dw_moved} across 3 calls: \
                 the nondeterministic algorithms were not taken",
                dt.name()
            );
        }
        // Back to deterministic: the earlier choices, the earlier bits.
        assert!(
            run(ConvAlgorithms::Deterministic) == first,
            "{}: deterministic after fastest is not the first choice",
            dt.name()
        );
    }
    set_conv_algorithms(ConvAlgorithms::Deterministic);
    // Each policy's choices on disk, apart: both backward directions, both dtypes.
    let file = std::fs::read_to_string(dir.path().join("cudnn-algos.json")).unwrap();
    let cache: serde_json::Value = serde_json::from_str(&file).unwrap();
    let keys: Vec<&String> = cache["entries"].as_object().unwrap().keys().collect();
    for direction in ["bwd_data", "bwd_filter"] {
        for dt in ["bf16", "f32"] {
            for policy in ["deterministic", "fastest"] {
                let found = keys.iter().any(|k| {
                    k.starts_with(&format!("{direction}|"))
                        && k.contains(&format!("|{dt}|{policy}|"))
                });
                assert!(
                    found,
                    "no {direction} {dt} {policy} choice on disk: {keys:?}"
                );
            }
        }
    }
}
