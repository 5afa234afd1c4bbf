//! Shared by the benches: the devices a group runs on, device-synchronised timing inside
//! criterion, the floor model ([`floor`]), inputs ([`data`]) and the case records that
//! bench/table.py reads ([`record`]).
//!
//! Every group comes twice, `<kernel>-cpu` (small sizes, f32) and `<kernel>-cuda` (SimCLRv2
//! sizes; with `--features cuda` and a device, else one "skipped: no CUDA device" line).
#![allow(dead_code)] // each bench uses its own part

pub mod data;
pub mod floor;
pub mod record;

pub use floor::Work;
pub use record::Case;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use simclr::{Device, Result};
use std::time::{Duration, Instant};

/// Criterion's settings for our groups: short warm-up and measurement (a GPU run of every
/// bench has to fit one 10-minute command), no HTML plots.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .without_plots()
}

/// The devices a kernel's groups run on: the CPU, and the first GPU where this build and machine
/// have one (otherwise one line says the CUDA group is skipped, or, with `SIMCLR_REQUIRE_GPU=1`,
/// the bench exits with status 1).
pub fn devices(kernel: &str) -> Vec<Device> {
    let mut out = vec![Device::Cpu];
    if simclr::cuda_available() {
        out.push(Device::Cuda(0));
    } else if std::env::var("SIMCLR_REQUIRE_GPU").as_deref() == Ok("1") {
        // A validation run: a bench that silently drops its GPU group must not look passed.
        eprintln!(
            "{kernel}-cuda: SIMCLR_REQUIRE_GPU=1 but no usable GPU: {}",
            simclr::cuda_unavailable_reason()
        );
        std::process::exit(1);
    } else {
        println!(
            "{kernel}-cuda: skipped: no CUDA device ({})",
            simclr::cuda_unavailable_reason()
        );
    }
    out
}

pub fn device_name(d: Device) -> &'static str {
    match d {
        Device::Cpu => "cpu",
        Device::Cuda(_) => "cuda",
    }
}

/// Waits for every queued kernel of `device` (a no-op on the CPU).
pub fn sync(device: Device) -> Result<()> {
    match device {
        Device::Cpu => Ok(()),
        #[cfg(feature = "cuda")]
        Device::Cuda(i) => simclr::cuda::gpu(i)?.synchronize(),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => Err(simclr::Error::device(
            "sync",
            simclr::cuda_unavailable_reason(),
        )),
    }
}

/// Whether criterion's name filter (the first free argument) can select `id`. A filter with
/// regex syntax is assumed to match, so only plain substrings save a case's setup.
pub fn selected(id: &str) -> bool {
    const WITH_VALUE: &[&str] = &[
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--profile-time",
        "--plotting-backend",
        "--output-format",
        "--format",
        "--color",
        "-c",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if WITH_VALUE.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            let regex = a.chars().any(|c| "\\.+*?()|[]{}^$".contains(c));
            return regex || id.contains(&a);
        }
    }
    true
}

/// Sets up, checks and times one case. `setup` builds the inputs; `run` is one iteration. A
/// case whose setup or first run fails (say, out of GPU memory) is reported as skipped and the
/// group goes on. Each timed batch of iterations starts and ends with a device sync.
pub fn run_case<S>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    case: Case,
    setup: impl FnOnce() -> Result<S>,
    mut run: impl FnMut(&mut S) -> Result<()>,
) {
    let id = case.id();
    if !selected(&id) {
        return;
    }
    // The first run pays one-off costs (algorithm search, allocator growth); the second is timed.
    let first = setup().and_then(|mut s| {
        run(&mut s)?;
        sync(case.device)?;
        let t = Instant::now();
        run(&mut s)?;
        sync(case.device)?;
        Ok((s, t.elapsed()))
    });
    let (mut state, once) = match first {
        Ok(v) => v,
        Err(e) => return case.report(None, Some(e.to_string())),
    };
    // Long iterations: a fixed count per sample (criterion's mode for slow routines).
    group.sampling_mode(if once > Duration::from_millis(20) {
        SamplingMode::Flat
    } else {
        SamplingMode::Auto
    });
    group.throughput(if case.work.bound(floor::ceilings(case.device)) == "FLOP" {
        Throughput::Elements(case.work.flops as u64)
    } else {
        Throughput::Bytes(case.work.bytes as u64)
    });
    let device = case.device;
    let mut per_iter = Vec::new();
    group.bench_function(BenchmarkId::new(case.function, &case.param), |b| {
        b.iter_custom(|iters| {
            let fail = |e: simclr::Error| -> ! { panic!("{id}: {e}") };
            sync(device).unwrap_or_else(|e| fail(e));
            let t = Instant::now();
            for _ in 0..iters {
                run(&mut state).unwrap_or_else(|e| fail(e));
            }
            sync(device).unwrap_or_else(|e| fail(e));
            let dt = t.elapsed();
            per_iter.push(dt.as_secs_f64() / iters.max(1) as f64);
            dt
        })
    });
    // Criterion's warm-up calls come first: the median of the later half is the measurement's.
    let mut late = per_iter.split_off(per_iter.len() / 2);
    late.sort_by(f64::total_cmp);
    let median = late.get(late.len() / 2).copied();
    if median.is_some() {
        case.report(median, None);
    }
}
