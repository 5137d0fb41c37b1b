//! `gateway-load`: drives payments at the gateway and reports core-path latency.
//!
//! ```sh
//! gateway-load --url http://127.0.0.1:8080 --n 3000 --concurrency 64   # one JSON line
//! gateway-load --url http://127.0.0.1:8080 --n 3000 --rate 300 --progress /tmp/sent --out run.json
//! gateway-load --bench --rounds 3 --out bench/results/gateway.md        # healthy/slow/down
//! ```
//!
//! Every payment is tagged with the phase of the run when it was sent: `healthy` at first,
//! `down` after SIGUSR1, `recovered` after SIGUSR2 (`make demo` sends them as it stops and
//! restarts the inference service). The JSON has the whole run's counts and p50/p99, and the
//! same per phase under `phases`; `risk_*` and `store_*` come from the gateway's
//! `Server-Timing` header (the risk step and the SQLite commit).
//!
//! `--bench` starts its own gateway and inference service per phase (Python healthy, slowed by
//! 200 ms, stopped) and reports p50/p99 and the ratios to the healthy phase.

// A CLI tool: its results go to stdout.
#![allow(clippy::print_stdout)]

#[path = "../../harness.rs"]
mod harness;

mod bench;
mod drive;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

fn number<T: std::str::FromStr>(args: &[String], name: &str, default: &str) -> Result<T, String> {
    let v = arg(args, name, default);
    v.parse()
        .map_err(|_| format!("{name} takes a number, got {v:?}"))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway-load: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = number(&args, "--n", "3000")?;
    let concurrency: usize = number(&args, "--concurrency", "64")?;
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    if args.iter().any(|a| a == "--bench") {
        let rounds: usize = number(&args, "--rounds", "3")?;
        let out = out.unwrap_or_else(bench::default_out);
        let md = bench::run(n, concurrency, rounds.max(1), &out).await?;
        println!("{md}");
        return Ok(());
    }
    let phase = Arc::new(AtomicU8::new(0));
    // Installed before the first payment, so an early signal is never fatal.
    for (kind, to) in [
        (SignalKind::user_defined1(), 1),
        (SignalKind::user_defined2(), 2),
    ] {
        let mut s = signal(kind).map_err(|e| format!("cannot watch signals: {e}"))?;
        let phase = phase.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                phase.store(to, Ordering::Relaxed);
            }
        });
    }
    let load = drive::Load {
        url: arg(&args, "--url", "http://127.0.0.1:8080"),
        n,
        concurrency,
        offset: number(&args, "--offset", "0")?,
        rate: number(&args, "--rate", "0")?,
        progress: args
            .iter()
            .position(|a| a == "--progress")
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from),
    };
    let samples = drive::drive(&load, phase).await;
    let summary = drive::summary(&samples).to_string();
    match out {
        Some(path) => std::fs::write(&path, format!("{summary}\n"))
            .map_err(|e| format!("{}: {e}", path.display()))?,
        None => println!("{summary}"),
    }
    Ok(())
}
