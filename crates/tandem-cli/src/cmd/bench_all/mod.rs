//! `tandem bench --all --app MODULE:APP --method M …`: the handler through every transport and
//! the one-shot script on this machine, a table, and a recommendation by the decision tree of
//! `docs/choosing.md` (`tandem::bench::choose`).
//!
//! Transports run one after another, each started, measured and stopped before the next, so they
//! do not compete for the cores. Everything started is stopped on success, on error and on
//! Ctrl-C (the started processes lead their own process groups; see `peer`).

mod peer;
mod plot;
mod render;
mod stage;

use serde_json::{json, Value};
use tandem::bench::choose::{recommend, Needs, Recommendation};

use crate::args::BenchArgs;
use crate::output::{print_line, Failure};
use stage::{Plan, Row};

/// Version of the `tandem bench --all --json` object.
const SCHEMA: u32 = 1;

pub(crate) async fn run(args: BenchArgs) -> Result<(), Failure> {
    let plan = plan(&args)?;
    let measured = tokio::select! {
        r = measure_all(&plan) => r,
        () = interrupted() => Err(Failure::Interrupted),
    };
    let result = measured.and_then(|rows| finish(&args, &plan, &rows));
    let _ = std::fs::remove_dir_all(&plan.logs);
    result
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM; dropping the run then stops all it started.
async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Checks the inputs and finds what the run needs before anything starts.
fn plan(args: &BenchArgs) -> Result<Plan, Failure> {
    let levels = super::bench::levels(&args.concurrency, &[1, 64]);
    let max = levels.iter().copied().max().unwrap_or(1);
    let opts = super::options(&args.common, Some(max));
    let cwd = match &opts.cwd {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()
            .map_err(|e| Failure::Internal(anyhow::anyhow!("no current directory: {e}")))?,
    };
    let redis = match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(redis_addr(&url)?),
        _ => None,
    };
    let redis_server = match redis {
        Some(_) => None,
        None => Some(peer::on_path("redis-server").ok_or_else(|| {
            Failure::Usage(anyhow::anyhow!(
                "redis-server is not on PATH: the queue row needs a Redis (install it, e.g. \
                 apt-get install redis-server, or set REDIS_URL=redis://HOST:PORT to use a \
                 running one)"
            ))
        })?),
    };
    let logs = std::env::temp_dir().join(format!("tandem-bench-all-{}", std::process::id()));
    std::fs::create_dir_all(&logs)
        .map_err(|e| Failure::Internal(anyhow::anyhow!("cannot create {}: {e}", logs.display())))?;
    Ok(Plan {
        app: args.all_args.app.clone().unwrap_or_default(),
        cfg: super::bench::config(args)?,
        levels,
        opts,
        cwd,
        logs,
        redis,
        redis_server,
    })
}

/// `HOST:PORT` of a `redis://[user:pass@]HOST:PORT[/DB]` URL.
fn redis_addr(url: &str) -> Result<String, Failure> {
    let rest = url.strip_prefix("redis://").unwrap_or(url);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let addr = rest.split('/').next().unwrap_or_default();
    if addr.contains(':') {
        Ok(addr.to_owned())
    } else {
        Err(Failure::Usage(anyhow::anyhow!(
            "REDIS_URL {url:?} has no port (format is redis://HOST:PORT)"
        )))
    }
}

async fn measure_all(plan: &Plan) -> Result<Vec<Row>, Failure> {
    let mut rows = Vec::new();
    for transport in stage::TRANSPORTS {
        tracing::info!(transport, "measuring");
        rows.push(stage::run(plan, transport).await?);
    }
    Ok(rows)
}

/// The recommendation, the output and the plot.
fn finish(args: &BenchArgs, plan: &Plan, rows: &[Row]) -> Result<(), Failure> {
    let needs = Needs {
        qps: args.all_args.qps,
        latency_ms: args.all_args.latency_ms,
        realtime: match (args.all_args.realtime, args.all_args.batch) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        needs_plugin: args.all_args.needs_plugin,
        payload_bytes: plan.cfg.payload_bytes,
    };
    let reports: Vec<_> = rows.iter().flat_map(|r| r.runs.iter().cloned()).collect();
    let rec = recommend(&needs, &reports);
    let object = to_json(args, plan, rows, &rec);
    if let Some(path) = &args.all_args.plot {
        plot::draw(&plan.opts.python, path, &object)?;
    }
    if args.json {
        print_line(&object.to_string())
    } else {
        for line in render::text(plan, rows, &rec, &machine()) {
            print_line(&line)?;
        }
        if let Some(path) = &args.all_args.plot {
            print_line(&format!("plot: {}", path.display()))?;
        }
        Ok(())
    }
}

/// This machine: cores and load average (the numbers depend on both).
pub(super) fn machine() -> Value {
    let load: Vec<f64> = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|v| v.parse().ok())
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    json!({"cores": cores, "load_avg": load})
}

fn to_json(args: &BenchArgs, plan: &Plan, rows: &[Row], rec: &Recommendation) -> Value {
    let redis_used = rows.iter().find_map(|r| r.redis.clone());
    let transports: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "transport": r.transport,
                "cold_start_ms": r.cold_start_ms,
                "isolation": r.isolation,
                "errors": r.errors,
                "runs": r.runs,
            })
        })
        .collect();
    let limit = match plan.cfg.limit {
        tandem::bench::Limit::Calls(n) => json!({"calls": n}),
        tandem::bench::Limit::Duration(d) => json!({"duration_s": d.as_secs_f64()}),
    };
    let unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    json!({
        "schema": SCHEMA,
        "type": "bench_all",
        "app": plan.app,
        "method": plan.cfg.method,
        "payload_bytes": plan.cfg.payload_bytes,
        "concurrency": plan.levels,
        "limit": limit,
        "script_calls_max": stage::SCRIPT_CALLS,
        "workers": plan.opts.workers,
        "redis": {
            "source": if plan.redis.is_some() { "REDIS_URL" } else { "private" },
            "addr": redis_used,
        },
        "machine": machine(),
        "finished_at_unix_s": unix_s,
        "transports": transports,
        "recommendation": rec,
        "plot": args.all_args.plot.as_ref().map(|p| p.display().to_string()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn redis_url_gives_host_and_port() {
        assert_eq!(redis_addr("redis://h:6379/0").unwrap(), "h:6379");
        assert_eq!(redis_addr("redis://u:p@h:1").unwrap(), "h:1");
        assert!(redis_addr("redis://h").is_err());
    }
}
