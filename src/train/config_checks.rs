//! Range checks on every number of the configuration, run before any work: each refusal names
//! the key (and its flag, where one exists), the value found and what is allowed, so nothing
//! fails later inside an op (`ntxent:`, a batch-norm shape) or runs on with NaN.

use super::config::Config;
use super::guard::check_alloc;
use crate::data::Splits;
use crate::{Error, Result};

/// `key (--flag) = value: allowed`, the shape of every refusal here.
fn refuse(key: &str, flag: Option<&str>, value: impl std::fmt::Display, allowed: &str) -> Error {
    let flag = flag.map_or(String::new(), |f| format!(" (--{f})"));
    Error::Config(format!("{key}{flag} = {value}: {allowed}"))
}

fn positive(key: &str, flag: Option<&str>, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        return Ok(());
    }
    Err(refuse(key, flag, v, "must be a finite number > 0"))
}

fn non_negative(key: &str, flag: Option<&str>, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        return Ok(());
    }
    Err(refuse(key, flag, v, "must be a finite number >= 0"))
}

fn unit(key: &str, flag: Option<&str>, v: f64) -> Result<()> {
    if (0.0..=1.0).contains(&v) {
        return Ok(());
    }
    Err(refuse(key, flag, v, "must be in [0, 1]"))
}

/// Most loader threads a run may ask for (each holds a prefetched batch).
const MAX_WORKERS: usize = 1024;

/// Longest interval in seconds a setting may ask for (about 31 years): an interval becomes a
/// `Duration`, which holds at most 2^64 seconds.
pub const MAX_SECONDS: f64 = 1e9;

pub fn check(c: &Config) -> Result<()> {
    let p = &c.pretrain;
    for (stage, lr, wd) in [
        ("pretrain", p.lr, p.weight_decay),
        ("finetune", c.finetune.lr, c.finetune.weight_decay),
        ("distill", c.distill.lr, c.distill.weight_decay),
        ("linear_eval", c.linear_eval.lr, c.linear_eval.weight_decay),
    ] {
        positive(&format!("{stage}.lr"), Some("lr"), lr)?;
        non_negative(&format!("{stage}.weight_decay"), None, wd)?;
    }
    for (stage, w) in [
        ("pretrain", p.warmup),
        ("finetune", c.finetune.warmup),
        ("distill", c.distill.warmup),
    ] {
        unit(&format!("{stage}.warmup"), None, w)?;
    }
    positive("pretrain.temperature", Some("temperature"), p.temperature)?;
    positive(
        "distill.temperature",
        Some("distill-temperature"),
        c.distill.temperature,
    )?;
    unit("distill.alpha", Some("alpha"), c.distill.alpha)?;
    if !(0.0..1.0).contains(&p.ema_momentum) {
        return Err(refuse(
            "pretrain.ema_momentum",
            None,
            p.ema_momentum,
            "must be in [0, 1) (a config-file key; there is no flag)",
        ));
    }
    if let Some(s) = p.color_strength {
        non_negative("pretrain.color_strength", Some("color-strength"), s)?;
    }
    if let Some(m) = c.memory_limit {
        positive("memory_limit", Some("memory-limit"), m)?;
    }
    if !(0.0..=MAX_SECONDS).contains(&c.progress_every) {
        return Err(refuse(
            "progress_every",
            Some("progress-every"),
            format!("{:?}", c.progress_every), // 1e99, not 100 digits
            "must be a number of seconds in [0, 1e9] (0: a line every step)",
        ));
    }
    if c.log_every == 0 {
        return Err(refuse("log_every", None, 0, "must be at least 1 (steps)"));
    }
    if p.proj_dim == 0 {
        return Err(refuse(
            "pretrain.proj_dim",
            None,
            0,
            "must be at least 1 (the projection width)",
        ));
    }
    // The head's last layer holds out_dim × proj_dim weights in four copies (weights,
    // gradients, LARS velocities, EMA weights): a width the host cannot hold is refused here,
    // since a failed allocation aborts the process.
    if let Ok(arch) = crate::nn::ResNetConfig::parse(&c.model) {
        let key = format!("pretrain.proj_dim (--proj-dim) = {}", p.proj_dim);
        let weights = arch.out_dim().saturating_mul(p.proj_dim);
        check_alloc("the projection head's last layer", &key, weights, 16)?;
    }
    if c.workers > MAX_WORKERS {
        return Err(refuse(
            "workers",
            Some("workers"),
            c.workers,
            "must be at most 1024 (0: one per core)",
        ));
    }
    if c.image_size == Some(0) {
        return Err(refuse("image_size", Some("image-size"), 0, "must be >= 1"));
    }
    if p.queue_size > 0 {
        let key = format!("pretrain.queue_size (--queue-size) = {}", p.queue_size);
        check_alloc(
            "the memory queue",
            &key,
            p.queue_size,
            p.proj_dim.saturating_mul(4),
        )?;
    }
    if c.dataset == "synthetic" {
        let side = c.image_size.unwrap_or(32);
        let image_bytes = side.saturating_mul(side).saturating_mul(3);
        for (flag, n) in [
            ("synthetic-train", c.synthetic_train),
            ("synthetic-test", c.synthetic_test),
        ] {
            let key = format!("{} (--{flag}) = {n}", flag.replace('-', "_"));
            check_alloc("the built-in images", &key, n, image_bytes)?;
        }
    }
    Ok(())
}

/// Refuses an empty training split before anything indexes it.
pub fn check_train_split(c: &Config, splits: &Splits) -> Result<()> {
    if !splits.train.is_empty() {
        return Ok(());
    }
    Err(if c.dataset == "synthetic" {
        refuse(
            "synthetic_train",
            Some("synthetic-train"),
            0,
            "the training split is empty; must be at least 1 (2 to pretrain)",
        )
    } else {
        Error::Config(format!(
            "dataset '{}' ({}) has no training images; at least 1 is needed",
            c.dataset,
            c.data_dir
                .as_ref()
                .map_or("built in".into(), |d| d.display().to_string())
        ))
    })
}

/// Refuses a stage that reports test accuracy when there is nothing to test on
/// ("top-1 0.00% on 0 test images" is not a result).
pub fn require_test_split(c: &Config, splits: &Splits) -> Result<()> {
    if !splits.test.is_empty() {
        return Ok(());
    }
    Err(if c.dataset == "synthetic" {
        refuse(
            "synthetic_test",
            Some("synthetic-test"),
            0,
            "the test split is empty; accuracy needs at least 1 test image",
        )
    } else {
        Error::Config(format!(
            "dataset '{}' has no test images; accuracy needs at least 1",
            c.dataset
        ))
    })
}

/// Pretraining's batch: the requested one clamped to the training split, which must hold two
/// images (each needs a negative). The learning rate is scaled by this batch, not the request.
pub fn pretrain_batch(c: &Config, train_len: usize) -> Result<usize> {
    let p = &c.pretrain;
    if train_len < 2 {
        return Err(Error::Config(format!(
            "pretraining needs at least 2 training images (each image's negatives are the \
             others); the training split has {train_len}{}",
            if c.dataset == "synthetic" {
                format!(" (--synthetic-train {})", c.synthetic_train)
            } else {
                String::new()
            }
        )));
    }
    let batch = p.batch_size.min(train_len);
    if batch < p.world_size {
        return Err(refuse(
            "pretrain.world_size",
            Some("world-size"),
            p.world_size,
            &format!("must be at most the batch ({batch} images after clamping to the data)"),
        ));
    }
    if batch < p.batch_size {
        println!(
            "pretrain: --batch-size {} is more than the {train_len} training images; using \
             {batch} (the learning rate is scaled by {batch})",
            p.batch_size
        );
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(c: &Config) -> String {
        check(c).unwrap_err().to_string()
    }

    #[test]
    fn refusals_name_key_value_and_range() {
        let mut c = Config::default();
        c.pretrain.lr = -1.0;
        assert!(err(&c).contains("pretrain.lr (--lr) = -1: must be a finite number > 0"));
        let mut c = Config::default();
        c.pretrain.temperature = f64::NAN;
        assert!(err(&c).contains("pretrain.temperature (--temperature) = NaN"));
        let mut c = Config::default();
        c.pretrain.weight_decay = f64::NAN;
        assert!(err(&c).contains("pretrain.weight_decay = NaN"));
        let mut c = Config::default();
        c.pretrain.proj_dim = 0;
        assert!(err(&c).contains("pretrain.proj_dim = 0"));
        let c = Config {
            log_every: 0,
            ..Config::default()
        };
        assert!(err(&c).contains("log_every = 0"));
        let mut c = Config::default();
        c.pretrain.ema_momentum = 1.5;
        let e = err(&c);
        assert!(
            e.contains("pretrain.ema_momentum = 1.5") && !e.contains("--ema"),
            "{e}"
        );
        let mut c = Config::default();
        c.pretrain.queue_size = 1 << 62;
        assert!(err(&c).contains("--queue-size"));
        let c = Config {
            synthetic_train: 100_000_000_000,
            ..Config::default()
        };
        assert!(err(&c).contains("--synthetic-train"));
        assert!(check(&Config::default()).is_ok());
    }
}
