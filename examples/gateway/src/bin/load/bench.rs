//! `gateway-load --bench`: the core path's p50/p99 with Python healthy, slow and down.
//!
//! Each round runs the three phases one after the other, each with a fresh inference service
//! (none when down) and a fresh gateway, 300 warm-up payments and then `n` measured ones.
//! Interleaving the phases round by round spreads the shared machine's noise over all three;
//! the table pools the rounds and the ratio of each round is listed to show the spread.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU8;
use std::sync::Arc;
use std::time::Duration;

use crate::drive::{drive, quantile, Load, Sample, Stats};
use crate::harness::{self, free_port, http, json, Proc};

/// A phase: its label and the delay injected into inference (`None`: not running).
const PHASES: [(&str, Option<u64>); 3] = [
    ("healthy", Some(0)),
    ("slow (200 ms)", Some(200)),
    ("down", None),
];

/// Runs `rounds` rounds of `n` payments per phase at `concurrency`; writes the table to `out`.
pub(crate) async fn run(
    n: usize,
    concurrency: usize,
    rounds: usize,
    out: &Path,
) -> Result<String, String> {
    let python = tandem::process::default_python();
    let dir = std::env::temp_dir().join(format!("gateway-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let gateway_bin = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("gateway");
    let load_before = loadavg();
    // samples[phase] pools the rounds; p99s[round][phase].
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); PHASES.len()];
    let mut p99s: Vec<Vec<f64>> = Vec::new();
    for round in 0..rounds {
        let mut row = Vec::new();
        for (i, (phase, delay)) in PHASES.iter().enumerate() {
            let s = one_phase(&python, &gateway_bin, &dir, *delay, n, concurrency).await?;
            let stats = Stats::of(&s);
            eprintln!("round {}/{rounds} {phase}: {}", round + 1, stats.json());
            row.push(stats.p99_ms);
            samples[i].extend(s);
        }
        p99s.push(row);
    }
    let md = table(n, concurrency, rounds, &samples, &p99s, &load_before);
    if let Some(parent) = out.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    // Hand-written analysis below a `## Notes` heading survives a re-run.
    let notes = std::fs::read_to_string(out)
        .ok()
        .and_then(|old| old.find("\n## Notes").map(|i| old[i..].to_owned()))
        .unwrap_or_default();
    std::fs::write(out, format!("{md}{notes}")).map_err(|e| format!("{}: {e}", out.display()))?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(md)
}

/// One phase: starts inference (if `delay` is set) and a gateway, warms up, measures.
async fn one_phase(
    python: &Path,
    gateway_bin: &Path,
    dir: &Path,
    delay: Option<u64>,
    n: usize,
    concurrency: usize,
) -> Result<Vec<Sample>, String> {
    let iport = free_port();
    let _inference = match delay {
        Some(d) => {
            let log = dir.join(format!("inference-{iport}.log"));
            let p = harness::start_inference(python, iport, d, &log)?;
            if !harness::inference_ready(iport, Duration::from_secs(60)).await {
                return Err(format!(
                    "inference did not become ready; see {}",
                    log.display()
                ));
            }
            Some(p)
        }
        None => None,
    };
    let gport = free_port();
    let db = dir.join(format!("bench-{gport}.sqlite3"));
    let log = dir.join(format!("gateway-{gport}.log"));
    let _gateway = Proc::start(
        "gateway",
        gateway_bin,
        &[
            "--listen",
            &format!("127.0.0.1:{gport}"),
            "--db",
            &db.to_string_lossy(),
            "--inference",
            &format!("grpc://127.0.0.1:{iport}"),
        ],
        dir,
        &[("RUST_LOG", "warn".into())],
        &log,
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
        return Err(format!("gateway did not start; see {}", log.display()));
    }
    let phase = Arc::new(AtomicU8::new(0));
    let load = |n, offset| Load {
        url: url.clone(),
        n,
        concurrency,
        offset,
        rate: 0.0,
        progress: None,
    };
    // A gentle warm-up (connections, the model's first batches) that does not trip the
    // breaker, then, with Python healthy, a closed breaker before measuring: otherwise a cold
    // start can open it and the "healthy" phase would measure the fallback.
    let mut warm = load(300, 1_000_000);
    warm.concurrency = concurrency.min(8);
    let _warm = drive(&warm, phase.clone()).await;
    if delay == Some(0) {
        let closed = harness::wait_for(Duration::from_secs(10), || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                matches!(
                    json(&client, "GET", &format!("{url}/readyz"), &[], vec![]).await,
                    Ok((200, v)) if v["risk"]["breaker"] == "Closed"
                )
            }
        })
        .await;
        if !closed {
            return Err(format!(
                "the risk breaker did not close after the warm-up with Python healthy; see {}",
                log.display()
            ));
        }
    }
    Ok(drive(&load(n, 0), phase).await)
    // The gateway and the inference service are stopped (group-wide) as they drop.
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn table(
    n: usize,
    c: usize,
    rounds: usize,
    samples: &[Vec<Sample>],
    p99s: &[Vec<f64>],
    load_before: &str,
) -> String {
    let stats: Vec<Stats> = samples.iter().map(Stats::of).collect();
    let base = stats[0].p99_ms.max(1e-9);
    let mut md = format!(
        "# gateway core-path latency\n\n\
         Command: `make bench-gateway` (`gateway-load --bench --n {n} --concurrency {c} --rounds {rounds}`), \
         release build, {date}, load average {load_before} before and {load_after} after \
         (1/5/15 min, 2 cores). Each round runs the three phases in turn, each with a fresh \
         inference service and gateway, 300 warm-up payments at concurrency ≤ 8 (with Python healthy, until the breaker is closed), then {n} measured payments at \
         concurrency {c}; risk deadline 50 ms. The table pools the rounds.\n\n\
         | Python | accepted | errors | model | fallback | p50 ms | p99 ms | p99 / healthy p99 | risk step p99 ms | risk step max ms | SQLite commit p99 ms |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
        date = today(),
        load_after = loadavg(),
    );
    for ((phase, _), s) in PHASES.iter().zip(&stats) {
        md.push_str(&format!(
            "| {phase} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            s.accepted,
            s.errors,
            s.model,
            s.fallback,
            s.p50_ms,
            s.p99_ms,
            s.p99_ms / base,
            s.risk_p99_ms,
            s.risk_max_ms,
            s.store_p99_ms,
        ));
    }
    md.push_str("\nPer round, p99 / healthy p99 of the same round:\n\n| round | slow | down |\n|---|---|---|\n");
    let mut slow = Vec::new();
    let mut down = Vec::new();
    for (r, row) in p99s.iter().enumerate() {
        let b = row[0].max(1e-9);
        slow.push(row[1] / b);
        down.push(row[2] / b);
        md.push_str(&format!(
            "| {} | {:.2} | {:.2} |\n",
            r + 1,
            row[1] / b,
            row[2] / b
        ));
    }
    md.push_str(&format!(
        "| median | {:.2} | {:.2} |\n",
        quantile(&mut slow, 0.5),
        quantile(&mut down, 0.5)
    ));
    md.push_str("\nGoal: p99 with Python slow or down ≤ 1.2 × p99 with Python healthy.\n");
    md
}

/// Where the table goes by default.
pub(crate) fn default_out() -> PathBuf {
    PathBuf::from("bench/results/gateway.md")
}
