//! The `simclr` trainer binary. Every failure is printed as one clear message with a non-zero
//! exit status; nothing panics on bad input.

use simclr::cli::{parse, run};

fn main() {
    // Output read by a reader that stops early (`simclr bench | head`) ends a single process
    // quietly, as it ends any Unix tool, instead of println! panicking on the closed pipe. A rank
    // of a multi-process job keeps SIGPIPE ignored: a peer's closed socket must come back from the
    // communication library as an error that names it, not kill the rank without a word.
    if simclr::comm::launch::from_env().is_ok_and(|l| l.world == 1) {
        // SAFETY: sets a signal disposition before any thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let cli = parse();
    simclr::train::signals::install();
    // A multi-process job finalises MPI only after success; after a failure the process exits
    // without it, so the launcher ends the other ranks instead of leaving them waiting.
    match run(cli).and_then(|()| simclr::comm::finish()) {
        Ok(()) => {}
        // 128 + signal, as a shell reports a process the signal ended.
        Err(simclr::Error::Interrupted { signal, msg }) => {
            eprintln!("{msg}");
            std::process::exit(128 + signal);
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
