//! The TOML side of the configuration: renamed keys are refused with the new name (a silently
//! ignored or misread key would change a run), and `--set section.key=value` overrides are
//! applied to the parsed table before it becomes a `Config`, so they follow the TOML's rules.
//! The resolved configuration goes back out as TOML too (`record`), loadable with `--config`.

use super::common::Env;
use super::config::Config;
use crate::{Error, Result};
use std::path::Path;
use toml::{Table, Value};

/// (old key, new key, what changed).
const RENAMED: [(&str, &str, &str); 2] = [
    (
        "pretrain.proj_layers",
        "pretrain.head_depth",
        "layers of the projection head; flag --head-depth",
    ),
    (
        "finetune.proj_layer",
        "finetune.from_layer",
        "the head layer fine-tuning starts from; flag --ft-from-layer",
    ),
];

/// A config from an optional TOML file plus `--set` overrides, defaults for the rest.
pub fn load(file: Option<&Path>, sets: &[String]) -> Result<Config> {
    let mut table = match file {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
            let t: Table = toml::from_str(&text)
                .map_err(|e| Error::Config(format!("{}: {e}", p.display())))?;
            check_renamed(&t, &p.display().to_string())?;
            t
        }
        None => Table::new(),
    };
    for s in sets {
        apply_set(&mut table, s)?;
    }
    check_renamed(&table, "--set")?;
    let what = file.map_or("--set".to_string(), |p| p.display().to_string());
    Config::deserialize_table(table).map_err(|e| Error::Config(format!("{what}: {e}")))
}

fn check_renamed(t: &Table, source: &str) -> Result<()> {
    for (old, new, what) in RENAMED {
        let (section, key) = old.split_once('.').unwrap_or(("", old));
        if t.get(section).and_then(|s| s.get(key)).is_some() {
            return Err(Error::Config(format!(
                "{source}: key {old} was renamed {new} ({what})"
            )));
        }
    }
    Ok(())
}

/// `section.key=value` or `key=value`; the value is read as TOML (a number, true/false, a
/// quoted string), or taken as a string when it is not one.
fn apply_set(t: &mut Table, s: &str) -> Result<()> {
    let bad = || {
        Error::Config(format!(
            "--set {s}: expected KEY=VALUE, e.g. --set finetune.lr=0.1"
        ))
    };
    let (key, raw) = s.split_once('=').ok_or_else(bad)?;
    let path: Vec<&str> = key.trim().split('.').collect();
    if path.iter().any(|p| p.is_empty()) || path.len() > 2 {
        return Err(bad());
    }
    let value = toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_string()));
    let mut target = t;
    for section in &path[..path.len() - 1] {
        let entry = target
            .entry(section.replace('-', "_"))
            .or_insert_with(|| Value::Table(Table::new()));
        target = entry.as_table_mut().ok_or_else(bad)?;
    }
    target.insert(path[path.len() - 1].replace('-', "_"), value);
    Ok(())
}

/// Prints the resolved configuration (every setting after the TOML and the flags, with the
/// peak learning rate each base rate becomes) and saves it as `config.toml`, which
/// `--config` loads back to repeat the run.
pub fn record(env: &Env) -> Result<()> {
    if !env.run.is_writer() {
        return Ok(()); // rank 0 of a multi-process job prints and writes it
    }
    let c = &env.cfg;
    let peaks: Vec<String> = [
        (
            "pretrain",
            &c.pretrain.lr_scaling,
            c.pretrain.lr,
            c.pretrain.batch_size,
        ),
        (
            "finetune",
            &c.finetune.lr_scaling,
            c.finetune.lr,
            c.finetune.batch_size,
        ),
        (
            "distill",
            &c.distill.lr_scaling,
            c.distill.lr,
            c.distill.batch_size,
        ),
        (
            "linear_eval",
            &c.linear_eval.lr_scaling,
            c.linear_eval.lr,
            c.linear_eval.batch_size,
        ),
    ]
    .iter()
    .map(|(stage, scaling, base, b)| {
        let peak = super::common::lr_scaling(scaling, *base).peak(*b);
        format!("# {stage}: lr {base} ({scaling} scaling, batch {b}) peaks at {peak:.4}")
    })
    .collect();
    let text = format!(
        "# simclr run {} in {}: the resolved configuration (load with --config).\n{}\n\n{}",
        env.run.run_id(),
        env.run.path().display(),
        peaks.join("\n"),
        c.to_toml()?
    );
    println!("{text}");
    crate::checkpoint::write_atomic(&env.path("config.toml"), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_overrides_typed_values_and_sections() {
        let sets = ["finetune.lr=0.25", "linear-eval.epochs=3", "dataset=mnist"].map(String::from);
        let c = load(None, &sets).unwrap();
        assert_eq!(c.finetune.lr, 0.25);
        assert_eq!(c.linear_eval.epochs, 3);
        assert_eq!(c.dataset, "mnist");
        assert_eq!(c.pretrain.lr, Config::default().pretrain.lr);
    }

    #[test]
    fn unknown_and_renamed_keys_are_refused_by_name() {
        let e = load(None, &["finetune.lrr=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("lrr"), "{e}");
        let e = load(None, &["pretrain.proj_layers=3".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("renamed pretrain.head_depth"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("old.toml");
        std::fs::write(&p, "[finetune]\nproj_layer = 2\n").unwrap();
        let e = load(Some(&p), &[]).unwrap_err().to_string();
        assert!(
            e.contains("finetune.proj_layer was renamed finetune.from_layer"),
            "{e}"
        );
        assert!(load(None, &["nonsense".into()]).is_err());
    }
}
