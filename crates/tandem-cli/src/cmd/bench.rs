//! `tandem bench ENDPOINT --method M …`: latency percentiles and throughput of an endpoint.

use tandem::bench::{self, Limit, Report};

use crate::args::BenchArgs;
use crate::output::{print_line, Failure};

pub(crate) async fn run(args: BenchArgs) -> Result<(), Failure> {
    let Some(endpoint) = args.endpoint.clone() else {
        return super::bench_all::run(args).await;
    };
    let levels = levels(&args.concurrency, &[1]);
    let cfg = config(&args)?;
    let max = levels.iter().copied().max().unwrap_or(1);
    let conn = super::open(&endpoint, &args.common, Some(max)).await?;
    let mut reports = Vec::new();
    for c in levels {
        let mut report = bench::run(conn.service.clone(), &cfg.clone().concurrency(c)).await;
        report.transport = conn.transport.to_owned();
        reports.push(report);
    }
    conn.close().await;
    for report in &reports {
        if args.json {
            let line = serde_json::to_string(report).map_err(|e| Failure::Internal(e.into()))?;
            print_line(&line)?;
        } else {
            print_line(&table(report))?;
        }
    }
    Ok(())
}

/// The concurrency levels asked for, or `default`.
pub(super) fn levels(asked: &[u32], default: &[usize]) -> Vec<usize> {
    if asked.is_empty() {
        default.to_vec()
    } else {
        asked.iter().map(|&c| c as usize).collect()
    }
}

/// The run's settings (all but the concurrency) from the flags; a bad --payload is a usage error.
pub(super) fn config(args: &BenchArgs) -> Result<bench::Config, Failure> {
    let limit = match (args.duration, args.calls) {
        (Some(d), _) => Limit::Duration(d),
        (None, n) => Limit::Calls(n.unwrap_or(1000)),
    };
    let codec: tandem::Codec = args.common.codec.into();
    let mut cfg = bench::Config::new(args.method.clone())
        .payload_bytes(args.payload_bytes)
        .limit(limit)
        .timeout(Some(args.common.timeout))
        .codec(codec)
        .warmup(args.warmup);
    if let Some(arg) = &args.payload {
        let value = super::call::read_payload(Some(arg)).map_err(Failure::Usage)?;
        let body = tandem::Payload::json(&value)
            .and_then(|p| p.transcode(codec))
            .map_err(|e| Failure::Usage(anyhow::anyhow!("cannot encode the payload: {e}")))?;
        cfg = cfg.body(body);
    }
    Ok(cfg)
}

/// The people-facing summary.
fn table(r: &Report) -> String {
    let mut s = format!(
        "{} {} · {} B payload · concurrency {}\n",
        r.transport, r.method, r.payload_bytes, r.concurrency
    );
    s.push_str(&format!(
        "  calls {:>8}   errors {:>6}   elapsed {:.2} s\n",
        r.calls, r.errors, r.elapsed_s
    ));
    s.push_str(&format!(
        "  p50 {:>10.1} µs   p90 {:>10.1} µs   p99 {:>10.1} µs   max {:>10.1} µs\n",
        r.p50_us, r.p90_us, r.p99_us, r.max_us
    ));
    s.push_str(&format!("  throughput {:.0} calls/s", r.throughput_per_s));
    if let Some(e) = &r.first_error {
        s.push_str(&format!("\n  first error: {e}"));
    }
    s
}
