//! Drives payments at a gateway: a fixed number, at most `concurrency` at a time, optionally
//! paced to a rate, each one tagged with the phase the run was in when it was sent and timed
//! end to end and by the gateway's `Server-Timing` (risk step, SQLite commit).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::harness::{self, http, percentile};

/// Phase names, indexed by the phase number the signals set (see `main.rs`).
pub(crate) const PHASES: [&str; 3] = ["healthy", "down", "recovered"];

/// What to send.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    /// Base URL of the gateway.
    pub(crate) url: String,
    /// Number of payments.
    pub(crate) n: usize,
    /// Payments in flight at most.
    pub(crate) concurrency: usize,
    /// First payment number (keeps idempotency keys of separate runs apart).
    pub(crate) offset: usize,
    /// Payments per second; 0 sends as fast as the concurrency allows.
    pub(crate) rate: f64,
    /// A file that holds how many payments were sent so far (rewritten every 1 %).
    pub(crate) progress: Option<PathBuf>,
}

/// One payment's outcome.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// The phase when it was sent.
    pub(crate) phase: u8,
    /// 201 Created.
    pub(crate) ok: bool,
    /// End to end, as the client saw it.
    pub(crate) latency: Duration,
    /// The gateway's risk step (model or fallback), from `Server-Timing`.
    pub(crate) risk_ms: f64,
    /// The gateway's SQLite commit, from `Server-Timing`.
    pub(crate) store_ms: f64,
    /// Scored by the model (else by the Rust rules).
    pub(crate) model: bool,
}

/// Sends `load`; `phase` is read as each payment is sent.
pub(crate) async fn drive(load: &Load, phase: Arc<AtomicU8>) -> Vec<Sample> {
    let client = http();
    let next = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(Mutex::new(Vec::with_capacity(load.n)));
    let progress = load.progress.clone().map(|p| Arc::new(Mutex::new(p)));
    let step = (load.n / 100).max(1);
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..load.concurrency {
        let (client, next, samples, phase) =
            (client.clone(), next.clone(), samples.clone(), phase.clone());
        let (load, progress) = (load.clone(), progress.clone());
        let url = format!("{}/v1/payments", load.url);
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= load.n {
                    break;
                }
                if load.rate > 0.0 {
                    tokio::time::sleep_until(
                        started + Duration::from_secs_f64(i as f64 / load.rate),
                    )
                    .await;
                }
                if (i + 1) % step == 0 {
                    if let Some(p) = &progress {
                        write_progress(p, i + 1);
                    }
                }
                let tag = phase.load(Ordering::Relaxed);
                let key = format!("load-{}-{}", load.offset, i);
                let start = Instant::now();
                let r = harness::exchange(
                    &client,
                    "POST",
                    &url,
                    &[
                        ("content-type", "application/json"),
                        ("idempotency-key", &key),
                    ],
                    harness::payment_body(load.offset + i),
                )
                .await;
                let latency = start.elapsed();
                let sample = match r {
                    Ok((201, headers, body)) => {
                        let timing = headers
                            .get("server-timing")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default();
                        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        Sample {
                            phase: tag,
                            ok: true,
                            latency,
                            risk_ms: timing_of(timing, "risk"),
                            store_ms: timing_of(timing, "store"),
                            model: v["risk_source"] == "model",
                        }
                    }
                    _ => Sample {
                        phase: tag,
                        ok: false,
                        latency,
                        risk_ms: 0.0,
                        store_ms: 0.0,
                        model: false,
                    },
                };
                samples
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(sample);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    if let Some(p) = &progress {
        write_progress(p, load.n);
    }
    let out = std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
    out
}

/// Replaces the progress file atomically (a reader never sees it half written).
fn write_progress(path: &Mutex<PathBuf>, sent: usize) {
    let path = path.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, format!("{sent}\n")).is_ok() {
        let _ = std::fs::rename(&tmp, &*path);
    }
}

/// The `dur` of metric `name` in a `Server-Timing` value (`risk;dur=1.2, store;dur=3.4`).
fn timing_of(header: &str, name: &str) -> f64 {
    header
        .split(',')
        .filter_map(|m| {
            let mut parts = m.trim().split(';');
            (parts.next()? == name).then_some(())?;
            parts.find_map(|p| p.trim().strip_prefix("dur=")?.parse().ok())
        })
        .next()
        .unwrap_or(0.0)
}

/// Rounds to hundredths.
fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The `q` quantile (0..1) of `values`, which it sorts.
pub(crate) fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return 0.0;
    }
    let i = ((values.len() as f64 - 1.0) * q).round() as usize;
    values[i.min(values.len() - 1)]
}

/// Counts and latency quantiles of some samples.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stats {
    pub(crate) accepted: usize,
    pub(crate) errors: usize,
    pub(crate) model: usize,
    pub(crate) fallback: usize,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) risk_p99_ms: f64,
    pub(crate) risk_max_ms: f64,
    pub(crate) store_p99_ms: f64,
}

impl Stats {
    /// Statistics of the accepted payments among `samples` (errors are only counted).
    pub(crate) fn of<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Stats {
        let mut s = Stats::default();
        let mut lat = Vec::new();
        let mut risk = Vec::new();
        let mut store = Vec::new();
        for x in samples {
            if !x.ok {
                s.errors += 1;
                continue;
            }
            s.accepted += 1;
            if x.model {
                s.model += 1;
            } else {
                s.fallback += 1;
            }
            lat.push(x.latency);
            risk.push(x.risk_ms);
            store.push(x.store_ms);
        }
        lat.sort();
        s.p50_ms = r2(percentile(&lat, 0.5));
        s.p99_ms = r2(percentile(&lat, 0.99));
        s.risk_p99_ms = r2(quantile(&mut risk, 0.99));
        s.risk_max_ms = r2(risk.last().copied().unwrap_or(0.0));
        s.store_p99_ms = r2(quantile(&mut store, 0.99));
        s
    }

    /// As a JSON object.
    pub(crate) fn json(&self) -> Value {
        json!({
            "accepted": self.accepted,
            "errors": self.errors,
            "model": self.model,
            "fallback": self.fallback,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "risk_p99_ms": self.risk_p99_ms,
            "risk_max_ms": self.risk_max_ms,
            "store_p99_ms": self.store_p99_ms,
        })
    }
}

/// The whole run (top-level fields) and each phase that saw payments (`phases`).
pub(crate) fn summary(samples: &[Sample]) -> Value {
    let mut out = Stats::of(samples).json();
    let mut phases = Map::new();
    for (i, name) in PHASES.iter().enumerate() {
        let of_phase: Vec<&Sample> = samples.iter().filter(|s| s.phase as usize == i).collect();
        if !of_phase.is_empty() {
            phases.insert((*name).to_owned(), Stats::of(of_phase).json());
        }
    }
    out["phases"] = Value::Object(phases);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_values_are_read_by_name() {
        let h = "risk;dur=1.250, store;dur=30.5";
        assert_eq!(timing_of(h, "risk"), 1.25);
        assert_eq!(timing_of(h, "store"), 30.5);
        assert_eq!(timing_of(h, "db"), 0.0);
        assert_eq!(timing_of("garbage;;", "risk"), 0.0);
    }

    #[test]
    fn summary_splits_by_phase_and_counts_errors() {
        let s = |phase, ok, ms| Sample {
            phase,
            ok,
            latency: Duration::from_millis(ms),
            risk_ms: 0.0,
            store_ms: 0.0,
            model: phase == 0,
        };
        let v = summary(&[s(0, true, 10), s(1, true, 20), s(1, false, 5)]);
        assert_eq!(v["accepted"], 2);
        assert_eq!(v["phases"]["healthy"]["model"], 1);
        assert_eq!(v["phases"]["down"]["errors"], 1);
        assert_eq!(v["phases"]["down"]["fallback"], 1);
        assert!(v["phases"].get("recovered").is_none());
    }
}
