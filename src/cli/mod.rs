//! Command-line interface of the `simclr` binary: argument definitions and dispatch.

mod bench;
mod info;

use crate::Result;
use clap::{Parser, Subcommand};

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
    /// Layer summary, parameter count and forward GMACs of an architecture.
    Info(info::InfoArgs),
    /// Time training steps of an architecture on random data.
    Bench(bench::BenchArgs),
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info(a) => info::run(&a),
        Command::Bench(a) => bench::run(&a),
    }
}
