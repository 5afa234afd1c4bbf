//! Command-line interface of the `simclr` binary: argument definitions and dispatch. Each
//! training subcommand flattens only the flag groups of the stages it runs.

mod bench;
mod convert;
mod device_report;
mod embed;
mod info;
mod kernels_report;
mod stage_args;
mod train_args;

use crate::train::{self, distill, finetune, linear_eval, pretrain, Config};
use crate::Result;
use clap::{Parser, Subcommand};
use stage_args::{DistillArgs, FinetuneArgs, LinearEvalArgs, OptimArgs, PretrainArgs};
use std::path::PathBuf;
pub use train_args::{DataArgs, RunArgs, Scope};

#[derive(Parser, Debug)]
#[command(
    name = "simclr",
    version,
    about = "SimCLRv2 training engine: pretrain, fine-tune, distill"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Data, run and optimisation flags: the part every training command has.
#[derive(clap::Args, Debug, Clone)]
pub struct TrainCommon {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten, next_help_heading = "Optimisation")]
    pub optim: OptimArgs,
}

impl TrainCommon {
    fn config(&self, scope: Scope) -> Result<Config> {
        let mut c = self.data.config()?;
        self.run.apply(&mut c)?;
        self.optim.apply(&mut c, scope);
        Ok(c)
    }
}

#[derive(clap::Args, Debug)]
pub struct PipelineArgs {
    #[command(flatten)]
    common: TrainCommon,
    #[command(flatten, next_help_heading = "Pretraining")]
    pre: PretrainArgs,
    #[command(flatten, next_help_heading = "Fine-tuning and supervised baseline")]
    ft: FinetuneArgs,
    #[command(flatten, next_help_heading = "Distillation")]
    di: DistillArgs,
    #[command(flatten, next_help_heading = "Linear evaluation")]
    le: LinearEvalArgs,
}

#[derive(clap::Args, Debug)]
pub struct PretrainCmd {
    #[command(flatten)]
    common: TrainCommon,
    #[command(flatten, next_help_heading = "Pretraining")]
    pre: PretrainArgs,
}

#[derive(clap::Args, Debug)]
pub struct FinetuneCmd {
    #[command(flatten)]
    common: TrainCommon,
    #[command(flatten, next_help_heading = "Fine-tuning")]
    ft: FinetuneArgs,
    /// Pretrained checkpoint (default: <out>/pretrain.safetensors).
    #[arg(long, value_name = "FILE")]
    pretrained: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct SupervisedCmd {
    #[command(flatten)]
    common: TrainCommon,
    #[command(flatten, next_help_heading = "Labelled subset")]
    ft: FinetuneArgs,
}

#[derive(clap::Args, Debug)]
pub struct DistillCmd {
    #[command(flatten)]
    common: TrainCommon,
    #[command(flatten, next_help_heading = "Distillation")]
    di: DistillArgs,
    /// Teacher checkpoint (default: <out>/finetune.safetensors).
    #[arg(long, value_name = "FILE")]
    teacher: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct LinearEvalCmd {
    #[command(flatten)]
    common: TrainCommon,
    #[command(flatten, next_help_heading = "Linear evaluation")]
    le: LinearEvalArgs,
    /// Pretrained checkpoint (default: <out>/pretrain.safetensors).
    #[arg(long, value_name = "FILE")]
    pretrained: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct EvalCmd {
    #[command(flatten)]
    data: DataArgs,
    /// Classifier checkpoint to evaluate (finetune, distill, supervised or linear-eval).
    #[arg(long, value_name = "FILE")]
    checkpoint: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Pretrain → fine-tune → distill → evaluate, plus linear eval and the supervised baseline.
    Pipeline(PipelineArgs),
    /// Contrastive pretraining of encoder + projection head.
    Pretrain(PretrainCmd),
    /// Fine-tune a pretrained checkpoint on a labelled subset.
    Finetune(FinetuneCmd),
    /// Distill a fine-tuned teacher into a student on the unlabelled images.
    Distill(DistillCmd),
    /// Linear classifier on the frozen pretrained encoder.
    LinearEval(LinearEvalCmd),
    /// The same architecture trained from scratch on the same labelled subset.
    Supervised(SupervisedCmd),
    /// Top-1 / top-5 of a classifier checkpoint on the test split.
    Eval(EvalCmd),
    /// Layer summary, parameter count and forward GMACs of an architecture.
    Info(info::InfoArgs),
    /// Time training steps of an architecture on random data.
    Bench(bench::BenchArgs),
    /// Features of every image of a split (encoder or head layer) as safetensors, with labels.
    Embed(embed::EmbedArgs),
    /// Write a checkpoint in another framework's format (torchvision).
    Export(convert::ExportArgs),
    /// Make a checkpoint from torchvision weights or the official SimCLRv2 TF release.
    Import(convert::ImportArgs),
}

fn or_default(p: &Option<PathBuf>, env: &train::Env, name: &str) -> PathBuf {
    p.clone().unwrap_or_else(|| env.path(name))
}

/// Parses the process's arguments, first rewriting the per-stage short form `--STAGE.KEY VALUE`
/// (or `--STAGE.KEY=VALUE`) into `--set STAGE.KEY=VALUE`.
pub fn parse() -> Cli {
    Cli::parse_from(rewrite_stage_flags(std::env::args()))
}

const STAGES: [&str; 5] = [
    "pretrain",
    "finetune",
    "distill",
    "linear_eval",
    "linear-eval",
];

pub fn rewrite_stage_flags(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let stage_key = a
            .strip_prefix("--")
            .filter(|k| STAGES.iter().any(|s| k.starts_with(&format!("{s}."))));
        match stage_key {
            Some(k) if k.contains('=') => out.extend(["--set".into(), k.to_string()]),
            Some(k) => {
                let v = it.next().unwrap_or_default();
                out.extend(["--set".into(), format!("{k}={v}")]);
            }
            None => out.push(a),
        }
    }
    out
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Pipeline(a) => {
            let mut c = a.common.config(Scope::All)?;
            a.pre.apply(&mut c);
            a.ft.apply(&mut c);
            a.di.apply(&mut c);
            a.le.apply(&mut c);
            // Also plotted when a stage stops early (the pipeline plots only when it ends).
            train::with_plot(
                &mut train_args::open_env(c, &a.common.run)?,
                train::pipeline,
            )
        }
        Command::Pretrain(a) => {
            let mut c = a.common.config(Scope::Pretrain)?;
            a.pre.apply(&mut c);
            let mut env = train_args::open_env(c, &a.common.run)?;
            train::with_plot(&mut env, pretrain::run)
        }
        Command::Finetune(a) => {
            let mut c = a.common.config(Scope::Finetune)?;
            a.ft.apply(&mut c);
            let mut env = train_args::open_env(c, &a.common.run)?;
            let p = or_default(&a.pretrained, &env, "pretrain.safetensors");
            train::with_plot(&mut env, |e| finetune::run(e, "finetune", Some(&p)))
        }
        Command::Distill(a) => {
            let mut c = a.common.config(Scope::Distill)?;
            a.di.apply(&mut c);
            let mut env = train_args::open_env(c, &a.common.run)?;
            let t = or_default(&a.teacher, &env, "finetune.safetensors");
            train::with_plot(&mut env, |e| distill::run(e, &t))
        }
        Command::LinearEval(a) => {
            let mut c = a.common.config(Scope::LinearEval)?;
            a.le.apply(&mut c);
            let mut env = train_args::open_env(c, &a.common.run)?;
            let p = or_default(&a.pretrained, &env, "pretrain.safetensors");
            train::with_plot(&mut env, |e| linear_eval::run(e, &p))
        }
        Command::Supervised(a) => {
            let mut c = a.common.config(Scope::Finetune)?;
            a.ft.apply(&mut c);
            let mut env = train_args::open_env(c, &a.common.run)?;
            train::with_plot(&mut env, |e| finetune::run(e, "supervised", None))
        }
        Command::Eval(a) => {
            // No config.toml: the training run's stays.
            let mut env = train::Env::open(a.data.config()?, false)?;
            train::eval(&mut env, &a.checkpoint).map(|_| ())
        }
        Command::Info(a) => info::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Embed(a) => embed::run(&a),
        Command::Export(a) => convert::export(&a),
        Command::Import(a) => convert::import(&a),
    }
}

#[cfg(test)]
mod help_tests;
