//! The `tandem` command. This crate only parses arguments, formats output and maps errors to
//! exit codes; everything else lives in the `tandem` library.
//!
//! Exit codes: 0 success; 1 the call failed with a tandem error (the peer answered with an
//! error, timed out, or was unavailable); 2 bad usage, bad configuration or an internal failure.
//! A broken stdout pipe (`tandem call … | head`) exits 0 quietly.

mod args;
mod cmd;
mod config;
mod duration;
mod endpoint;
mod output;

use clap::Parser;

use args::{Cli, Command};
use output::Failure;

fn main() {
    let argv = match config::expand(std::env::args_os().collect()) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("tandem: {e}");
            std::process::exit(output::EXIT_USAGE);
        }
    };
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() {
                output::EXIT_USAGE
            } else {
                0
            });
        }
    };
    std::process::exit(run(cli));
}

/// Runs one verb and returns the process exit code.
fn run(cli: Cli) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return output::report(&Failure::Internal(e.into())),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Call(args) => cmd::call::run(args).await,
            Command::Bench(args) => cmd::bench::run(args).await,
            Command::Queue(args) => cmd::queue::run(args).await,
        }
    });
    // Workers and scripts are children of this process: let the runtime finish their clean-up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(()) => 0,
        Err(f) => output::report(&f),
    }
}
