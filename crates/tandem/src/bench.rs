//! Load generation and latency statistics for any transport: the engine behind `tandem bench`.
//!
//! [`run`] drives a `tower::Service<Request>` with `concurrency` callers, each making calls one
//! after another until a call count or a duration is reached, and returns a [`Report`] with the
//! latency percentiles and the throughput. It needs no feature: any transport client (or a
//! baseline written for a benchmark) can be measured the same way, so results compare as ratios.
//! [`choose`] walks the transport decision tree of `docs/choosing.md` over such reports (what
//! `tandem bench --all` prints as its recommendation).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use tandem::bench::{self, Config, Limit};
//! use tandem::{Request, Response};
//!
//! // Any Service<Request> works; this one echoes in-process.
//! let echo = tower::service_fn(|req: Request| async move {
//!     Ok::<_, tandem::Error>(Response::new(req.payload().clone()))
//! });
//! let report = bench::run(echo, &Config::new("echo").limit(Limit::Calls(100))).await;
//! assert_eq!(report.calls, 100);
//! assert_eq!(report.errors, 0);
//! # }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tower::{Service, ServiceExt};

use crate::call::{Error, Request, Response};
use crate::codec::{Codec, Payload};

pub mod choose;

/// When a benchmark run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// After this many calls in total (successful or not).
    Calls(u64),
    /// After this much time (calls in flight then finish).
    Duration(Duration),
}

/// What to measure: method, payload size, concurrency and when to stop.
#[derive(Debug, Clone)]
pub struct Config {
    /// The method called.
    pub method: String,
    /// Approximate encoded size of each payload, in bytes.
    pub payload_bytes: usize,
    /// How many callers run at once.
    pub concurrency: usize,
    /// When the run stops.
    pub limit: Limit,
    /// Per-call timeout, set as each request's deadline.
    pub timeout: Option<Duration>,
    /// The payload codec.
    pub codec: Codec,
    /// Calls made before measuring starts (not counted), spread over the callers.
    pub warmup: u64,
    /// The payload sent with every call; `None`: a string of `payload_bytes` bytes.
    pub body: Option<Payload>,
}

impl Config {
    /// 100-byte json payloads, one caller, 1000 calls, no timeout, 50 warm-up calls.
    pub fn new(method: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            payload_bytes: 100,
            concurrency: 1,
            limit: Limit::Calls(1000),
            timeout: None,
            codec: Codec::Json,
            warmup: 50,
            body: None,
        }
    }

    /// Sends `body` with every call instead of a generated string; `payload_bytes` becomes
    /// its size.
    pub fn body(mut self, body: Payload) -> Self {
        self.payload_bytes = body.len();
        self.body = Some(body);
        self
    }

    /// Sets the payload size in bytes.
    pub fn payload_bytes(mut self, n: usize) -> Self {
        self.payload_bytes = n;
        self
    }

    /// Sets the number of concurrent callers (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Sets when the run stops.
    pub fn limit(mut self, limit: Limit) -> Self {
        self.limit = limit;
        self
    }

    /// Sets the per-call timeout.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the payload codec (json or msgpack).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Sets the number of warm-up calls.
    pub fn warmup(mut self, n: u64) -> Self {
        self.warmup = n;
        self
    }
}

/// The result of a run; serialized as the `tandem bench --json` object (see `docs/cli-json.md`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Version of this object's schema.
    pub schema: u32,
    /// The transport or baseline measured (`pool`, `script`, `floor`, ...); set by the caller.
    pub transport: String,
    /// The method called.
    pub method: String,
    /// Approximate encoded payload size.
    pub payload_bytes: usize,
    /// Concurrent callers.
    pub concurrency: usize,
    /// Calls made (successful or not), warm-up excluded.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Median latency of all measured calls, in microseconds.
    pub p50_us: f64,
    /// 90th percentile latency, in microseconds.
    pub p90_us: f64,
    /// 99th percentile latency, in microseconds.
    pub p99_us: f64,
    /// Slowest call, in microseconds.
    pub max_us: f64,
    /// Calls per second over the measured wall time.
    pub throughput_per_s: f64,
    /// Measured wall time, in seconds.
    pub elapsed_s: f64,
    /// The first error seen, if any, as its message.
    pub first_error: Option<String>,
}

/// Schema version of [`Report`]'s JSON form.
pub const SCHEMA_VERSION: u32 = 1;

/// A payload of about `bytes` encoded bytes: a string of `x`s in `codec` (raw: the bytes).
pub fn payload(bytes: usize, codec: Codec) -> Payload {
    let body = "x".repeat(bytes.saturating_sub(5));
    match codec {
        Codec::Raw => Payload::raw(body.into_bytes()),
        Codec::Msgpack => Payload::new(
            Codec::Msgpack,
            Codec::Msgpack.encode(&body).unwrap_or_default(),
        ),
        Codec::Json => Payload::new(Codec::Json, Codec::Json.encode(&body).unwrap_or_default()),
    }
}

/// The `p`-quantile (0.0 ..= 1.0) of sorted samples, nearest-rank; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.saturating_sub(1).min(sorted.len() - 1)]
}

/// Runs the benchmark described by `cfg` against `svc` and reports latencies and throughput.
///
/// Errors do not stop the run: they are counted (and their latency included), and the first
/// one is kept in the report.
pub async fn run<S>(svc: S, cfg: &Config) -> Report
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
{
    let payload = cfg
        .body
        .clone()
        .unwrap_or_else(|| payload(cfg.payload_bytes, cfg.codec));
    let concurrency = cfg.concurrency.max(1);

    // Warm-up: start processes, fill caches; not measured.
    let per_caller = cfg.warmup.div_ceil(concurrency as u64);
    let warm = (0..concurrency).map(|_| {
        let (svc, req) = (svc.clone(), request(cfg, &payload));
        tokio::spawn(async move {
            let mut svc = svc;
            for _ in 0..per_caller {
                let _ = call(&mut svc, req.clone()).await;
            }
        })
    });
    for h in warm.collect::<Vec<_>>() {
        let _ = h.await;
    }

    let issued = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let started = Instant::now();
    let stop_at = match cfg.limit {
        Limit::Duration(d) => Some(started + d),
        Limit::Calls(_) => None,
    };
    let max_calls = match cfg.limit {
        Limit::Calls(n) => n,
        Limit::Duration(_) => u64::MAX,
    };
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (mut svc, issued, first_error) = (svc.clone(), issued.clone(), first_error.clone());
            let (method, payload, timeout) = (cfg.method.clone(), payload.clone(), cfg.timeout);
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut errors = 0u64;
                loop {
                    if stop_at.is_some_and(|t| Instant::now() >= t)
                        || issued.fetch_add(1, Ordering::Relaxed) >= max_calls
                    {
                        break;
                    }
                    let mut req = Request::new(method.clone(), payload.clone());
                    if let Some(t) = timeout {
                        req = req.with_timeout(t);
                    }
                    let t0 = Instant::now();
                    let res = call(&mut svc, req).await;
                    samples.push(t0.elapsed());
                    if let Err(e) = res {
                        errors += 1;
                        let mut first = first_error.lock().unwrap_or_else(|p| p.into_inner());
                        first.get_or_insert_with(|| e.to_string());
                    }
                }
                (samples, errors)
            })
        })
        .collect();
    let mut samples = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((s, e)) = t.await {
            samples.extend(s);
            errors += e;
        }
    }
    let elapsed = started.elapsed();
    samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let first_error = first_error.lock().unwrap_or_else(|p| p.into_inner()).take();
    Report {
        schema: SCHEMA_VERSION,
        transport: String::new(),
        method: cfg.method.clone(),
        payload_bytes: cfg.payload_bytes,
        concurrency,
        calls: samples.len() as u64,
        errors,
        p50_us: us(percentile(&samples, 0.50)),
        p90_us: us(percentile(&samples, 0.90)),
        p99_us: us(percentile(&samples, 0.99)),
        max_us: us(samples.last().copied().unwrap_or_default()),
        throughput_per_s: samples.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        elapsed_s: elapsed.as_secs_f64(),
        first_error,
    }
}

fn request(cfg: &Config, payload: &Payload) -> Request {
    let req = Request::new(cfg.method.clone(), payload.clone());
    match cfg.timeout {
        Some(t) => req.with_timeout(t),
        None => req,
    }
}

async fn call<S>(svc: &mut S, req: Request) -> Result<Response, Error>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    svc.ready().await?.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let s = ms(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(percentile(&s, 0.5), Duration::from_millis(5));
        assert_eq!(percentile(&s, 0.9), Duration::from_millis(9));
        assert_eq!(percentile(&s, 0.99), Duration::from_millis(10));
        assert_eq!(percentile(&s, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
        assert_eq!(percentile(&ms(&[7]), 0.99), Duration::from_millis(7));
    }

    #[test]
    fn payloads_have_about_the_asked_size() {
        for codec in [Codec::Json, Codec::Msgpack, Codec::Raw] {
            for n in [100, 65536] {
                let p = payload(n, codec);
                assert!(p.len().abs_diff(n) <= 5, "{codec} {n}: {}", p.len());
            }
        }
    }

    #[tokio::test]
    async fn counts_calls_and_errors() {
        let n = Arc::new(AtomicU64::new(0));
        let svc = tower::service_fn(move |req: Request| {
            let k = n.fetch_add(1, Ordering::Relaxed);
            async move {
                if k % 2 == 0 {
                    Ok(Response::new(req.payload().clone()))
                } else {
                    Err(Error::bad_request(crate::Transport::Pool, "m", "odd"))
                }
            }
        });
        let cfg = Config::new("m")
            .concurrency(4)
            .limit(Limit::Calls(40))
            .warmup(0);
        let r = run(svc, &cfg).await;
        assert_eq!(r.calls, 40);
        assert_eq!(r.errors, 20);
        assert!(r.first_error.unwrap().contains("odd"));
        assert!(r.p50_us <= r.p99_us);
    }
}
