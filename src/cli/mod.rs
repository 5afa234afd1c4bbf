//! Command-line interface of the `simclr` binary: argument definitions and dispatch.

mod bench;
mod convert;
mod device_report;
mod embed;
mod info;
mod train_args;

use crate::train::{self, distill, finetune, linear_eval, pretrain};
use crate::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
pub use train_args::{CommonArgs, Scope};

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

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Pretrain → fine-tune → distill → evaluate, plus linear eval and the supervised baseline.
    Pipeline(CommonArgs),
    /// Contrastive pretraining of encoder + projection head.
    Pretrain(CommonArgs),
    /// Fine-tune a pretrained checkpoint on a labelled subset.
    Finetune {
        #[command(flatten)]
        common: CommonArgs,
        /// Pretrained checkpoint (default: <out>/pretrain.safetensors).
        #[arg(long)]
        pretrained: Option<PathBuf>,
    },
    /// Distill a fine-tuned teacher into a student on the unlabelled images.
    Distill {
        #[command(flatten)]
        common: CommonArgs,
        /// Teacher checkpoint (default: <out>/finetune.safetensors).
        #[arg(long)]
        teacher: Option<PathBuf>,
    },
    /// Linear classifier on the frozen pretrained encoder, all labels.
    LinearEval {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long)]
        pretrained: Option<PathBuf>,
    },
    /// The same architecture trained from scratch on the same labelled subset.
    Supervised(CommonArgs),
    /// Top-1 / top-5 of a classifier checkpoint on the test split.
    Eval {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long)]
        checkpoint: PathBuf,
    },
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

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Pipeline(a) => train::pipeline(&mut a.env(Scope::All)?).map(|_| ()),
        Command::Pretrain(a) => pretrain::run(&mut a.env(Scope::Pretrain)?).map(|_| ()),
        Command::Finetune { common, pretrained } => {
            let mut env = common.env(Scope::Finetune)?;
            let p = or_default(&pretrained, &env, "pretrain.safetensors");
            finetune::run(&mut env, "finetune", Some(&p)).map(|_| ())
        }
        Command::Distill { common, teacher } => {
            let mut env = common.env(Scope::Distill)?;
            let t = or_default(&teacher, &env, "finetune.safetensors");
            distill::run(&mut env, &t).map(|_| ())
        }
        Command::LinearEval { common, pretrained } => {
            let mut env = common.env(Scope::LinearEval)?;
            let p = or_default(&pretrained, &env, "pretrain.safetensors");
            linear_eval::run(&mut env, &p).map(|_| ())
        }
        Command::Supervised(a) => {
            finetune::run(&mut a.env(Scope::Finetune)?, "supervised", None).map(|_| ())
        }
        Command::Eval { common, checkpoint } => {
            train::eval(&mut common.env(Scope::Finetune)?, &checkpoint).map(|_| ())
        }
        Command::Info(a) => info::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Embed(a) => embed::run(&a),
        Command::Export(a) => convert::export(&a),
        Command::Import(a) => convert::import(&a),
    }
}
