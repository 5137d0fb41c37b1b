//! The people-facing output of `bench --all`: the table, isolation, and the recommendation.

use serde_json::Value;
use tandem::bench::choose::Recommendation;
use tandem::bench::Report;

use super::stage::{Plan, Row, SCRIPT_CALLS};

/// The lines to print.
pub(super) fn text(
    plan: &Plan,
    rows: &[Row],
    rec: &Recommendation,
    machine: &Value,
) -> Vec<String> {
    let mut out = vec![format!(
        "tandem bench --all: {} {} · {} B payload · {} · workers {} · {} cores · load {}",
        plan.app,
        plan.cfg.method,
        plan.cfg.payload_bytes,
        match plan.cfg.limit {
            tandem::bench::Limit::Calls(n) => format!("{n} calls per run"),
            tandem::bench::Limit::Duration(d) => format!("{:.1} s per run", d.as_secs_f64()),
        },
        plan.opts.workers,
        machine["cores"],
        machine["load_avg"][0],
    )];
    let mut header = format!("{:<8}", "");
    for c in &plan.levels {
        header.push_str(&format!(" | {:^30}", format!("concurrency {c}")));
    }
    header.push_str(" |");
    out.push(header);
    let mut sub = format!("{:<8}", "");
    for _ in &plan.levels {
        sub.push_str(&format!(
            " | {:>9} {:>9} {:>10}",
            "p50 ms", "p99 ms", "calls/s"
        ));
    }
    sub.push_str(&format!(" | {:>13} {:>6}", "cold start ms", "errors"));
    out.push(sub);
    for row in rows {
        let mut line = format!("{:<8}", row.transport);
        for &c in &plan.levels {
            match row.runs.iter().find(|r| r.concurrency == c) {
                Some(r) => line.push_str(&cells(r)),
                None => line.push_str(&format!(" | {:>9} {:>9} {:>10}", "-", "-", "-")),
            }
        }
        line.push_str(&format!(" | {:>13.1} {:>6}", row.cold_start_ms, row.errors));
        out.push(line);
    }
    out.push(format!(
        "(script: one process per call, so concurrency 1 and at most {SCRIPT_CALLS} calls; \
         cold start: from starting the transport to its first answer)"
    ));
    for row in rows.iter().filter(|r| r.errors > 0) {
        if let Some(e) = row.runs.iter().find_map(|r| r.first_error.as_ref()) {
            out.push(format!("{} first error: {e}", row.transport));
        }
    }
    out.push(String::new());
    out.push("isolation (what a crash of the handler takes down):".to_owned());
    for row in rows {
        out.push(format!("  {:<8} {}", row.transport, row.isolation));
    }
    out.push(String::new());
    out.push(format!("recommendation: {}", rec.transport));
    for (i, s) in rec.path.iter().enumerate() {
        out.push(format!("  {}. {} {}", i + 1, s.question, s.answer));
    }
    out.push(format!("  measured: {}", rec.reason));
    for w in &rec.warnings {
        out.push(format!("  warning: {w}"));
    }
    out.push("  (the decision tree and its numbers: docs/choosing.md)".to_owned());
    out
}

fn cells(r: &Report) -> String {
    format!(
        " | {:>9.2} {:>9.2} {:>10.0}",
        r.p50_us / 1000.0,
        r.p99_us / 1000.0,
        r.throughput_per_s
    )
}
