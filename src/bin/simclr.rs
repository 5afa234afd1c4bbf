//! The `simclr` trainer binary. Every failure is printed as one clear message with a non-zero
//! exit status; nothing panics on bad input.

use clap::Parser;
use simclr::cli::{run, Cli};

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
