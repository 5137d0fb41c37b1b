//! `gateway-load`: drives payments at the gateway and reports core-path latency.
//!
//! ```sh
//! gateway-load --url http://127.0.0.1:8080 --n 3000 --concurrency 64   # one JSON line
//! gateway-load --bench --out bench/results/gateway.md                   # healthy/slow/down
//! ```
//! `--bench` starts its own gateway and inference service per phase (Python healthy, slowed by
//! 200 ms, stopped) and reports p50/p99 and the ratios to the healthy phase.

// A CLI tool: its results go to stdout.
#![allow(clippy::print_stdout)]

#[path = "../harness.rs"]
mod harness;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::{free_port, http, json, percentile, Proc};
use serde_json::{json as j, Value};

#[derive(Debug, Default)]
struct Tally {
    latencies: Vec<Duration>,
    model: usize,
    fallback: usize,
    errors: usize,
}

async fn drive(url: &str, n: usize, concurrency: usize, offset: usize) -> Tally {
    let client = http();
    let next = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, tally) = (client.clone(), next.clone(), tally.clone());
        let url = format!("{url}/v1/payments");
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let key = format!("load-{}-{}", offset, i);
                let start = Instant::now();
                let r = json(
                    &client,
                    "POST",
                    &url,
                    &[
                        ("content-type", "application/json"),
                        ("idempotency-key", &key),
                    ],
                    harness::payment_body(offset + i),
                )
                .await;
                let took = start.elapsed();
                let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                match r {
                    Ok((201, v)) => {
                        t.latencies.push(took);
                        if v["risk_source"] == "model" {
                            t.model += 1;
                        } else {
                            t.fallback += 1;
                        }
                    }
                    _ => t.errors += 1,
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut t = std::mem::take(&mut *tally.lock().unwrap_or_else(|p| p.into_inner()));
    t.latencies.sort();
    t
}

fn summary(t: &Tally) -> Value {
    j!({
        "accepted": t.latencies.len(),
        "errors": t.errors,
        "model": t.model,
        "fallback": t.fallback,
        "p50_ms": (percentile(&t.latencies, 0.5) * 100.0).round() / 100.0,
        "p99_ms": (percentile(&t.latencies, 0.99) * 100.0).round() / 100.0,
    })
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = arg(&args, "--n", "3000").parse().unwrap_or(3000);
    let c: usize = arg(&args, "--concurrency", "64").parse().unwrap_or(64);
    let offset: usize = arg(&args, "--offset", "0").parse().unwrap_or(0);
    if args.iter().any(|a| a == "--bench") {
        let out = PathBuf::from(arg(&args, "--out", "bench/results/gateway.md"));
        return match bench(n, c, &out).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gateway-load: {e}");
                std::process::ExitCode::from(1)
            }
        };
    }
    let url = arg(&args, "--url", "http://127.0.0.1:8080");
    let t = drive(&url, n, c, offset).await;
    println!("{}", summary(&t));
    std::process::ExitCode::SUCCESS
}

async fn bench(n: usize, c: usize, out: &std::path::Path) -> Result<(), String> {
    let python = tandem::process::default_python();
    let dir = std::env::temp_dir().join(format!("gateway-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let gateway_bin = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("gateway");
    let mut rows = Vec::new();
    for (phase, delay) in [
        ("healthy", Some(0u64)),
        ("slow (200 ms)", Some(200)),
        ("down", None),
    ] {
        let iport = free_port();
        let mut inference = match delay {
            Some(d) => {
                let p = harness::start_inference(
                    &python,
                    iport,
                    d,
                    &dir.join(format!("inference-{iport}.log")),
                )?;
                if !harness::inference_ready(iport, Duration::from_secs(60)).await {
                    return Err(format!(
                        "inference did not become ready; see {}",
                        dir.display()
                    ));
                }
                Some(p)
            }
            None => None,
        };
        let gport = free_port();
        let db = dir.join(format!("bench-{gport}.sqlite3"));
        let mut gateway = Proc::start(
            "gateway",
            &gateway_bin,
            &[
                "--listen",
                &format!("127.0.0.1:{gport}"),
                "--db",
                &db.to_string_lossy(),
                "--inference",
                &format!("grpc://127.0.0.1:{iport}"),
            ],
            &dir,
            &[("RUST_LOG", "warn".into())],
            &dir.join(format!("gateway-{gport}.log")),
        )?;
        let url = format!("http://127.0.0.1:{gport}");
        let client = http();
        let up = harness::wait_for(Duration::from_secs(30), || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                matches!(
                    json(&client, "GET", &format!("{url}/healthz"), &[], vec![]).await,
                    Ok((200, _))
                )
            }
        })
        .await;
        if !up {
            return Err(format!("gateway did not start; see {}", dir.display()));
        }
        let _warm = drive(&url, 300, c, 1_000_000).await;
        let t = drive(&url, n, c, 0).await;
        eprintln!("{phase}: {}", summary(&t));
        rows.push((phase, t));
        gateway.stop("-TERM", Duration::from_secs(10));
        if let Some(p) = inference.as_mut() {
            p.stop("-TERM", Duration::from_secs(10));
        }
    }
    let base = percentile(&rows[0].1.latencies, 0.99).max(1e-9);
    let mut md = format!(
        "# gateway core-path latency\n\nCommand: `make bench-gateway` (`gateway-load --bench --n {n} --concurrency {c}`), release build, \
         on this shared 2-core machine; {n} payments per phase after 300 warm-up, concurrency {c}, risk deadline 50 ms.\n\n\
         | Python | accepted | errors | model | fallback | p50 ms | p99 ms | p99 / healthy p99 |\n|---|---|---|---|---|---|---|---|\n"
    );
    for (phase, t) in &rows {
        md.push_str(&format!(
            "| {phase} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} |\n",
            t.latencies.len(),
            t.errors,
            t.model,
            t.fallback,
            percentile(&t.latencies, 0.5),
            percentile(&t.latencies, 0.99),
            percentile(&t.latencies, 0.99) / base,
        ));
    }
    md.push_str("\nGoal: p99 with Python slow or down ≤ 1.2 × p99 with Python healthy.\n");
    if let Some(parent) = out.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(out, &md).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("{md}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
