//! Picks a transport by the decision tree of `docs/choosing.md`, citing measured numbers.
//!
//! The tree, one question at a time:
//!
//! 1. more than ~100 QPS? yes → is the latency need under ~100 ms? yes → **grpc**; looser →
//!    question 2;
//! 2. does the caller need a real-time answer? no → **queue**;
//! 3. does it need plugins (isolation, swap without restart, third-party code)? yes → **plugin**;
//! 4. by data size: small → **process** (pool, or a one-shot script); large → **grpc**.
//!
//! [`recommend`] walks it for a [`Needs`] and a set of [`Report`]s (as `tandem bench --all`
//! measures them), and returns the branch taken, each answer with its reason, and warnings when
//! the pick did not meet the stated needs on this machine.
//!
//! ```
//! use tandem::bench::choose::{recommend, Needs};
//!
//! let needs = Needs { qps: Some(10.0), realtime: Some(false), ..Needs::default() };
//! assert_eq!(recommend(&needs, &[]).transport, "queue");
//! ```

use serde::Serialize;

use super::Report;

/// Above this many calls per second a service counts as high-traffic (question 1).
pub const HIGH_QPS: f64 = 100.0;
/// A latency need under this many milliseconds is tight (question 1).
pub const TIGHT_LATENCY_MS: f64 = 100.0;
/// Payloads of at least this many bytes count as large (question 4).
pub const LARGE_PAYLOAD_BYTES: usize = 1024 * 1024;

/// What the caller needs; `None` means not stated (the defaults below say how each is read).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Needs {
    /// Expected calls per second (`None`: read as under ~100).
    pub qps: Option<f64>,
    /// The latency the caller can wait for an answer, in milliseconds (`None` with high QPS:
    /// read as tight).
    pub latency_ms: Option<f64>,
    /// Whether the caller waits for the answer (`None`: read as real-time).
    pub realtime: Option<bool>,
    /// Whether the handler must run as a plugin (isolated, swappable, third-party code).
    pub needs_plugin: bool,
    /// Size of one payload in bytes.
    pub payload_bytes: usize,
}

/// One answered question of the tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The question, e.g. `more than ~100 QPS?`.
    pub question: String,
    /// The answer and why, e.g. `yes: 1000 QPS`.
    pub answer: String,
}

/// The transport picked, how, and what the measurements say about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// `grpc`, `queue`, `plugin` or `process`.
    pub transport: String,
    /// The questions answered on the way, in order.
    pub path: Vec<Step>,
    /// Why this transport, citing the measured numbers.
    pub reason: String,
    /// Where the pick did not meet a stated need on this machine.
    pub warnings: Vec<String>,
    /// The needs the tree was walked with.
    pub needs: Needs,
}

fn step(question: &str, answer: String) -> Step {
    Step {
        question: question.to_owned(),
        answer,
    }
}

/// Walks the decision tree for `needs`, citing `measured` (reports of `tandem bench --all`;
/// may be empty).
pub fn recommend(needs: &Needs, measured: &[Report]) -> Recommendation {
    let mut path = Vec::new();
    let pick = walk(needs, &mut path);
    let mut warnings = Vec::new();
    let cite_as = if pick == "process" { "pool" } else { pick };
    let mut reason = format!("{pick}: {}", cite(measured, cite_as));
    if pick == "process" {
        reason.push_str(&format!(
            "; one-shot script: {} (for rare jobs, or code that must start fresh each time)",
            cite(measured, "script")
        ));
    }
    if let (Some(qps), Some(best)) = (needs.qps, fastest(measured, cite_as)) {
        if best.throughput_per_s < qps {
            warnings.push(format!(
                "{cite_as} made {:.0} calls/s here (concurrency {}), under the {qps:.0} QPS \
                 needed: add workers or replicas, and measure again",
                best.throughput_per_s, best.concurrency
            ));
        }
    }
    if let (Some(ms), Some(r)) = (needs.latency_ms, at_one(measured, cite_as)) {
        if r.p99_us / 1000.0 > ms {
            warnings.push(format!(
                "{cite_as} p99 was {:.1} ms here at concurrency 1, over the {ms} ms latency need",
                r.p99_us / 1000.0
            ));
        }
    }
    Recommendation {
        transport: pick.to_owned(),
        path,
        reason,
        warnings,
        needs: needs.clone(),
    }
}

/// The branch taken: fills `path` and returns the transport.
fn walk(needs: &Needs, path: &mut Vec<Step>) -> &'static str {
    let q1 = "more than ~100 QPS?";
    match needs.qps {
        Some(qps) if qps > HIGH_QPS => {
            path.push(step(q1, format!("yes: {qps} QPS")));
            let q = "latency need under ~100 ms?";
            match needs.latency_ms {
                Some(ms) if ms >= TIGHT_LATENCY_MS => {
                    path.push(step(q, format!("no: {ms} ms, looser; next question")));
                }
                Some(ms) => {
                    path.push(step(q, format!("yes: {ms} ms")));
                    return "grpc";
                }
                None => {
                    path.push(step(q, "not given (--latency-ms): read as yes".to_owned()));
                    return "grpc";
                }
            }
        }
        Some(qps) => path.push(step(q1, format!("no: {qps} QPS"))),
        None => path.push(step(q1, "not given (--qps): read as no".to_owned())),
    }
    let q2 = "needs a real-time answer?";
    match needs.realtime {
        Some(false) => {
            path.push(step(q2, "no (--batch)".to_owned()));
            return "queue";
        }
        Some(true) => path.push(step(q2, "yes (--realtime)".to_owned())),
        None => path.push(step(
            q2,
            "not given (--realtime/--batch): read as yes".to_owned(),
        )),
    }
    let q3 = "needs plugins (isolation, swap without restart, third-party code)?";
    if needs.needs_plugin {
        path.push(step(q3, "yes (--needs-plugin)".to_owned()));
        return "plugin";
    }
    path.push(step(q3, "no".to_owned()));
    let q4 = "data size?";
    let n = needs.payload_bytes;
    if n >= LARGE_PAYLOAD_BYTES {
        path.push(step(q4, format!("large: {n} B (≥ 1 MiB)")));
        "grpc"
    } else {
        path.push(step(q4, format!("small: {n} B (< 1 MiB)")));
        "process"
    }
}

/// The report of `transport` at concurrency 1.
fn at_one<'a>(measured: &'a [Report], transport: &str) -> Option<&'a Report> {
    measured
        .iter()
        .find(|r| r.transport == transport && r.concurrency == 1)
}

/// The report of `transport` with the most calls per second.
fn fastest<'a>(measured: &'a [Report], transport: &str) -> Option<&'a Report> {
    measured
        .iter()
        .filter(|r| r.transport == transport)
        .max_by(|a, b| a.throughput_per_s.total_cmp(&b.throughput_per_s))
}

/// `p50 0.4 ms, p99 1.2 ms at concurrency 1; 2500 calls/s at concurrency 64`.
fn cite(measured: &[Report], transport: &str) -> String {
    let mut parts = Vec::new();
    if let Some(r) = at_one(measured, transport) {
        parts.push(format!(
            "p50 {:.2} ms, p99 {:.2} ms at concurrency 1",
            r.p50_us / 1000.0,
            r.p99_us / 1000.0
        ));
    }
    if let Some(r) = fastest(measured, transport) {
        parts.push(format!(
            "{:.0} calls/s at concurrency {}",
            r.throughput_per_s, r.concurrency
        ));
    }
    if parts.is_empty() {
        "not measured".to_owned()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(transport: &str, concurrency: usize, p99_ms: f64, per_s: f64) -> Report {
        Report {
            schema: 1,
            transport: transport.to_owned(),
            method: "echo".to_owned(),
            payload_bytes: 100,
            concurrency,
            calls: 100,
            errors: 0,
            p50_us: p99_ms * 500.0,
            p90_us: p99_ms * 900.0,
            p99_us: p99_ms * 1000.0,
            max_us: p99_ms * 1000.0,
            throughput_per_s: per_s,
            elapsed_s: 1.0,
            first_error: None,
        }
    }

    fn pick(needs: Needs) -> String {
        recommend(&needs, &[]).transport
    }

    #[test]
    fn follows_the_tree() {
        let base = Needs {
            payload_bytes: 100,
            ..Needs::default()
        };
        let high = |latency_ms| Needs {
            qps: Some(1000.0),
            latency_ms,
            ..base.clone()
        };
        assert_eq!(pick(high(Some(50.0))), "grpc");
        assert_eq!(pick(high(None)), "grpc");
        // Looser latency falls through to the next questions.
        assert_eq!(pick(high(Some(500.0))), "process");
        let low = Needs {
            qps: Some(10.0),
            ..base.clone()
        };
        let batch = Needs {
            realtime: Some(false),
            ..low.clone()
        };
        assert_eq!(pick(batch), "queue");
        let plugin = Needs {
            realtime: Some(true),
            needs_plugin: true,
            ..low.clone()
        };
        assert_eq!(pick(plugin), "plugin");
        assert_eq!(pick(low.clone()), "process");
        let large = Needs {
            payload_bytes: 4 << 20,
            ..low
        };
        assert_eq!(pick(large), "grpc");
        assert_eq!(pick(base), "process");
    }

    #[test]
    fn path_says_which_branch_and_why() {
        let r = recommend(
            &Needs {
                qps: Some(10.0),
                realtime: Some(false),
                ..Needs::default()
            },
            &[],
        );
        assert_eq!(r.path.len(), 2);
        assert_eq!(r.path[0].answer, "no: 10 QPS");
        assert_eq!(r.path[1].answer, "no (--batch)");
        assert!(r.reason.contains("not measured"), "{}", r.reason);
    }

    #[test]
    fn cites_numbers_and_warns_when_a_need_is_not_met() {
        let measured = [
            report("grpc", 1, 2.0, 500.0),
            report("grpc", 64, 20.0, 800.0),
        ];
        let r = recommend(
            &Needs {
                qps: Some(1000.0),
                latency_ms: Some(1.0),
                ..Needs::default()
            },
            &measured,
        );
        assert_eq!(r.transport, "grpc");
        assert!(
            r.reason.contains("p99 2.00 ms at concurrency 1"),
            "{}",
            r.reason
        );
        assert!(
            r.reason.contains("800 calls/s at concurrency 64"),
            "{}",
            r.reason
        );
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
        assert!(r.warnings[0].contains("under the 1000 QPS needed"));
        assert!(r.warnings[1].contains("over the 1 ms latency need"));
    }

    #[test]
    fn process_cites_the_pool_and_the_script() {
        let measured = [
            report("pool", 1, 1.0, 900.0),
            report("script", 1, 90.0, 11.0),
        ];
        let r = recommend(&Needs::default(), &measured);
        assert_eq!(r.transport, "process");
        assert!(r.reason.starts_with("process: p50 0.50 ms"), "{}", r.reason);
        assert!(
            r.reason.contains("one-shot script: p50 45.00 ms"),
            "{}",
            r.reason
        );
        assert!(r.warnings.is_empty());
    }
}
