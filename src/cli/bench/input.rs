//! `simclr bench --task input`: the input pipeline alone on an image folder, at the training
//! size, as SimCLR pretraining runs it (two augmented views per image).
//!
//! The machine may be shared, so rates per core come from CPU time (user + system), not wall
//! time: single-thread phases use the thread's CPU clock, the multi-threaded loader the
//! process's. Phases: decode at full size, decode at the JPEG scale the crops need, the
//! two-view augmentation alone, the whole loader with `--workers` threads, and the loader of
//! `--augment-on gpu` (decode and parameter draws only); with `--device cuda` (or the emulated
//! device), that path's GPU augmentation too. With
//! `--with-step`, the pretraining step of `--model` is timed too and the slower side named,
//! and on a CUDA device training on the folder is timed end to end (bench/end_to_end.rs).

use super::{run_steps, BenchArgs, BenchTask};
use crate::data::stream::decode::decode_path;
use crate::data::stream::{listing::Listing, BadImages, StreamDataset};
use crate::data::{
    sample_rng, AugmentConfig, Loader, LoaderConfig, Ordered, PretrainAugment, SourceDecode,
    Transform,
};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct InputArgs {
    /// --task input: the image folder (train/<class>/*.JPEG, or <class>/*.JPEG).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// --task input: loader worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// --task input: also time the pretraining step of --model at the same batch and size,
    /// and say which side limits training.
    #[arg(long)]
    pub with_step: bool,
    /// --task input: when --data-dir has no train/ folder yet, first write this many
    /// synthetic JPEGs into <data-dir>/train (8 classes, sides 375-500 px, quality 90), for a
    /// machine without an image folder.
    #[arg(long, value_name = "IMAGES")]
    pub make_folder: Option<usize>,
}

/// `--make-folder`: the synthetic folder, unless `dir` already has its train/ split.
fn make_folder(dir: &Path, images: usize) -> Result<()> {
    use crate::data::stream::synth::{write_split, SynthFolder};
    if dir.join("train").is_dir() {
        println!(
            "--make-folder: {} has a train/ folder; reading it",
            dir.display()
        );
        return Ok(());
    }
    if images < 8 {
        return Err(Error::Config(format!(
            "--make-folder is {images}; it writes 8 classes, so at least 8 images"
        )));
    }
    let spec = SynthFolder {
        classes: 8,
        per_class: images / 8,
        sides: (375, 500),
        png_every: 0,
        gray_every: 0,
        exif_every: 0,
        quality: 90,
    };
    let t0 = Instant::now();
    let files = write_split(dir, "train", &spec, &mut crate::Rng::new(0))?;
    println!(
        "--make-folder: wrote {} JPEGs into {} in {:.1} s",
        files.len(),
        dir.join("train").display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// CPU seconds of this thread (`thread`) or of the whole process.
fn cpu_seconds(thread: bool) -> f64 {
    if thread {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid timespec for the call to fill.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        return t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9;
    }
    // SAFETY: zeroed rusage is a valid value for getrusage to overwrite.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid rusage for the call to fill.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn listing(dir: &Path) -> Result<Listing> {
    if dir.join("train").is_dir() {
        Listing::folder(&dir.join("train"))
    } else {
        Listing::folder(dir)
    }
}

/// Runs `f` over `items` on this thread; returns its CPU seconds.
fn timed<T>(items: &[T], mut f: impl FnMut(&T) -> Result<()>) -> Result<f64> {
    let t0 = cpu_seconds(true);
    for it in items {
        f(it)?;
    }
    Ok(cpu_seconds(true) - t0)
}

fn line(what: &str, images: usize, cpu: f64) {
    println!(
        "{what:<44} {:>8.1} images per CPU-second ({:.2} ms CPU per image, {images} images)",
        images as f64 / cpu.max(1e-9),
        cpu * 1e3 / images.max(1) as f64
    );
}

/// The input pipeline's rates on `device` (`args.device` resolved).
pub fn run(args: &BenchArgs, device: crate::Device) -> Result<()> {
    let a = &args.resolved(device);
    let dir = a.input.data_dir.as_deref().ok_or_else(|| {
        Error::Config("--task input needs --data-dir (an image folder to read)".into())
    })?;
    if a.batch() == 0 || a.steps() == 0 {
        return Err(Error::Config(
            "--batch-size and --steps must be at least 1".into(),
        ));
    }
    if let Some(n) = a.input.make_folder {
        make_folder(dir, n)?;
    }
    let list = listing(dir)?;
    let aug = Arc::new(PretrainAugment::new(AugmentConfig::imagenet(a.size()))?);
    let n = list.len().min(a.batch() * a.steps()).min(512);
    let paths: Vec<(usize, PathBuf)> = (0..n).map(|i| (i, list.path(i))).collect();
    println!(
        "input pipeline on {} ({} images), {} px, two views, single-thread phases over {n} images:",
        dir.display(),
        list.len(),
        a.size()
    );
    let full = timed(&paths, |(_, p)| decode_path(p, &|h, w| (h, w)).map(|_| ()))?;
    line("decode, full size", n, full);
    let need = |i: usize| {
        let aug = aug.clone();
        move |h: usize, w: usize| {
            (0..2).fold((1, 1), |m, v| {
                let (nh, nw) = aug.decode_need((h, w), &sample_rng(0, 0, i, v));
                (m.0.max(nh), m.1.max(nw))
            })
        }
    };
    // One pass, two clocks: each image is decoded at its scale, then augmented; nothing is
    // kept, so neither phase pays for page faults of a growing heap.
    let per = a.size() * a.size() * 3;
    let mut out = vec![0f32; per];
    let (mut scaled, mut augment) = (0.0, 0.0);
    for (i, p) in &paths {
        let t0 = cpu_seconds(true);
        let d = decode_path(p, &need(*i))?;
        let t1 = cpu_seconds(true);
        for v in 0..2 {
            let mut rng = sample_rng(0, 0, *i, v);
            aug.apply_full(&d.image, d.full, &mut rng, &mut out)?;
        }
        drop(d);
        let t2 = cpu_seconds(true);
        scaled += t1 - t0;
        augment += t2 - t1;
    }
    line("decode, at the scale the crops need", n, scaled);
    line(
        "two-view augmentation (crop, flip, colour, blur)",
        n,
        augment,
    );

    let ds = Arc::new(StreamDataset::new(list, BadImages::Skip));
    let workers = if a.input.workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        a.input.workers
    };
    let cfg = LoaderConfig {
        batch_size: a.batch(),
        views: 2,
        workers,
        prefetch: 2 * workers,
        drop_last: true,
        ..Default::default()
    };
    let loader = Loader::new(ds, aug, cfg)?;
    let batches = (a.warmup() + a.steps()).min(loader.batches_per_epoch());
    if batches <= a.warmup() {
        return Err(Error::Config(format!(
            "the folder holds {} whole batches of {}; --warmup {} leaves none to time",
            loader.batches_per_epoch(),
            a.batch(),
            a.warmup()
        )));
    }
    // The CPU path (decode + augmentation), then the GPU path's share of the CPU (decode +
    // drawing the parameters; the GPU augments).
    let timed_batches = batches - a.warmup();
    let images = timed_batches * a.batch();
    let (wall, cpu) = time_batches(loader.epoch(0), a.warmup(), timed_batches)?;
    line(
        &format!("loader, {workers} workers (process CPU time)"),
        images,
        cpu,
    );
    let input_rate = images as f64 / wall;
    println!(
        "loader wall rate: {input_rate:.1} images/s on {workers} workers ({:.2} cores busy)",
        cpu / wall
    );
    let gpu_cfg = gpu_config(a.size());
    let raw_phase = |decode: SourceDecode, what: &str, work: &str| -> Result<()> {
        let raw = loader.raw_epoch(0, &gpu_cfg, decode);
        let (wall, cpu) = time_batches(raw, a.warmup(), timed_batches)?;
        line(
            &format!("{what} loader ({work}), {workers} workers"),
            images,
            cpu,
        );
        println!(
            "{what} loader wall rate: {:.1} images/s on {workers} workers",
            images as f64 / wall
        );
        Ok(())
    };
    raw_phase(SourceDecode::Host, "--augment-on gpu", "decode + draw")?;
    // With nvJPEG on a CUDA device, the workers only read files and draw parameters.
    let nvjpeg = matches!(device, crate::Device::Cuda(_))
        && crate::train::decode_on::nvjpeg_available().is_ok();
    if nvjpeg {
        raw_phase(SourceDecode::Gpu, "--decode-on gpu", "read + draw")?;
    }
    if let crate::Device::Cuda(ordinal) = device {
        gpu_phase(a, &loader, &gpu_cfg, ordinal, SourceDecode::Host)?;
        if nvjpeg {
            gpu_phase(a, &loader, &gpu_cfg, ordinal, SourceDecode::Gpu)?;
        }
    }
    if a.input.with_step {
        let step = run_steps(
            &BenchArgs {
                task: BenchTask::Pretrain,
                ..a.clone()
            },
            device,
        )?;
        let per_core = images as f64 / cpu.max(1e-9);
        println!(
            "step: {step:.1} images/s, input: {input_rate:.1} images/s -> {} limits training; \
             feeding the step needs {:.1} cores of this pipeline",
            if input_rate < step {
                "the input"
            } else {
                "the step"
            },
            step / per_core
        );
        #[cfg(feature = "cuda")]
        if let crate::Device::Cuda(ordinal) = a.device.resolve()? {
            let decode = if nvjpeg {
                SourceDecode::Gpu
            } else {
                SourceDecode::Host
            };
            super::end_to_end::run(a, &loader, &gpu_cfg, ordinal, decode, step, input_rate)?;
        }
    }
    Ok(())
}

/// The augmentation `--augment-on gpu` runs at `size` (bilinear).
fn gpu_config(size: usize) -> AugmentConfig {
    AugmentConfig {
        interpolation: crate::data::Interpolation::Bilinear,
        ..AugmentConfig::imagenet(size)
    }
}

/// Wall and process CPU seconds of `timed` batches of `it` after `warmup`.
fn time_batches<T>(mut it: Ordered<T>, warmup: usize, timed: usize) -> Result<(f64, f64)> {
    for _ in 0..warmup {
        it.next().transpose()?;
    }
    let (t0, c0) = (Instant::now(), cpu_seconds(false));
    for _ in 0..timed {
        it.next().transpose()?;
    }
    Ok((t0.elapsed().as_secs_f64(), cpu_seconds(false) - c0))
}

/// With `--device cuda`: the GPU half of `--augment-on gpu` as training runs it
/// (`data::gpu_input`: one pinned upload of the u8 sources per batch, one launch for both
/// views, bf16 out), on batches the loader has already built; device time per batch.
#[cfg(feature = "cuda")]
fn gpu_phase(
    a: &BenchArgs,
    loader: &Loader,
    cfg: &AugmentConfig,
    ordinal: usize,
    decode: SourceDecode,
) -> Result<()> {
    let dev = crate::Device::Cuda(ordinal);
    let steps = a.warmup() + a.steps();
    let batches: Vec<_> = loader
        .raw_epoch(0, cfg, decode)
        .take(steps.min(loader.batches_per_epoch()))
        .collect::<Result<_>>()?;
    let mut input = crate::data::gpu_input::GpuInput::new(ordinal)?;
    let what = match decode {
        SourceDecode::Gpu => format!("GPU decode (nvJPEG, {}) + ", input.decode_jpegs()?),
        SourceDecode::Host => String::new(),
    };
    let mut secs = Vec::new();
    for step in 0..steps {
        let b = &batches[step % batches.len()];
        crate::device_select::synchronize(dev)?;
        let t0 = Instant::now();
        let out = input.views(cfg, b, crate::DType::BF16)?;
        crate::device_select::synchronize(dev)?;
        drop(out);
        if step >= a.warmup() {
            secs.push(t0.elapsed().as_secs_f64());
        }
    }
    secs.sort_by(f64::total_cmp);
    let median = secs[secs.len() / 2];
    println!(
        "{what}GPU two-view augmentation on cuda:{ordinal} ({} mode, pinned upload included): \
         {:.1} images/s (median of {} batches of {}){}",
        crate::cuda::driver::mode().name(),
        a.batch() as f64 / median,
        secs.len(),
        a.batch(),
        jpeg_split(decode, &input)
    );
    Ok(())
}

/// Where the JPEGs went, when nvJPEG decodes: those its hardware decoder does not take are
/// decoded on the CPU (`data::gpu_input`), which a rate alone would not show.
#[cfg(feature = "cuda")]
pub(super) fn jpeg_split(decode: SourceDecode, input: &crate::data::gpu_input::GpuInput) -> String {
    match decode {
        SourceDecode::Gpu => {
            let c = input.jpeg_counts();
            format!("; JPEGs: {} by nvJPEG, {} on the CPU", c.nvjpeg, c.cpu)
        }
        SourceDecode::Host => String::new(),
    }
}

#[cfg(not(feature = "cuda"))]
fn gpu_phase(
    _: &BenchArgs,
    _: &Loader,
    _: &AugmentConfig,
    _: usize,
    _: SourceDecode,
) -> Result<()> {
    Ok(())
}
