//! `tandem bench ENDPOINT --method M …`: latency percentiles and throughput of an endpoint.

use tandem::bench::{self, Limit, Report};

use crate::args::BenchArgs;
use crate::output::{print_line, Failure};

pub(crate) async fn run(args: BenchArgs) -> Result<(), Failure> {
    let limit = match (args.duration, args.calls) {
        (Some(d), _) => Limit::Duration(d),
        (None, n) => Limit::Calls(n.unwrap_or(1000)),
    };
    let cfg = bench::Config::new(args.method.clone())
        .payload_bytes(args.payload_bytes)
        .concurrency(args.concurrency as usize)
        .limit(limit)
        .timeout(Some(args.common.timeout))
        .codec(args.common.codec.into())
        .warmup(args.warmup);
    let conn = super::open(
        &args.endpoint,
        &args.common,
        Some(args.concurrency as usize),
    )
    .await?;
    let mut report = bench::run(conn.service.clone(), &cfg).await;
    report.transport = conn.transport.to_owned();
    conn.close().await;
    if args.json {
        let line = serde_json::to_string(&report).map_err(|e| Failure::Internal(e.into()))?;
        print_line(&line)
    } else {
        print_line(&table(&report))
    }
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
