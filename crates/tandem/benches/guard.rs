//! The cost of the guard stack and metrics per call, beside the bare inner call in the same
//! run (machines are shared and noisy: read the added nanoseconds and the ratio, not the
//! absolute numbers).
//!
//! Run: `CARGO_TARGET_DIR=/work/target cargo bench -p tandem --all-features --bench guard`
//!
//! The inner service is a trivial in-process service, so the numbers are the layers' own
//! overhead: bare call; `Policy` (fallback → breaker → bulkhead → timeout → retry) without
//! metrics; the same with the metrics registry as its observer; and that plus `TraceLayer`.
//! Then the same comparison over a real transport: a 2-worker `process::Pool` echoing 100 B
//! at concurrency 1, bare vs `Policy` + `MetricsLayer` (needs the `process` feature and the
//! project's Python: `$TANDEM_PYTHON` or `.venv/bin/python`).
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem::guard::Policy;
use tandem::metrics::Registry;
use tandem::trace::TraceLayer;
use tandem::{Error, Payload, Request, Response, Transport};
use tower::{service_fn, Layer, Service, ServiceExt};

const CALLS: u32 = 200_000;
const ROUNDS: usize = 7;

async fn run<S>(svc: &mut S, req: &Request) -> Duration
where
    S: Service<Request, Response = Response, Error = Error>,
{
    let start = Instant::now();
    for _ in 0..CALLS {
        let resp = svc.ready().await.unwrap().call(req.clone()).await.unwrap();
        black_box(resp);
    }
    start.elapsed()
}

fn ns_per_call(d: Duration) -> f64 {
    d.as_nanos() as f64 / f64::from(CALLS)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let inner = service_fn(|_req: Request| async { Ok::<_, Error>(Response::default()) });
    let registry = Registry::new();
    let policy = Policy::new("bench", Transport::Pool)
        .fallback(|_, _| Some(Response::new(Payload::raw("degraded"))));
    let observed = policy.clone().observer(Arc::new(registry.clone()));
    let req = Request::new("score", Payload::raw(r#"{"amount": 12}"#));

    let mut bare = inner;
    let mut guarded = policy.layer().layer(inner);
    let mut metered = observed.layer().layer(inner);
    let mut traced = TraceLayer::new().layer(observed.layer().layer(inner));

    let mut results: [Vec<f64>; 4] = Default::default();
    rt.block_on(async {
        // Warm up every path (allocator, label maps), then interleave the rounds.
        run(&mut bare, &req).await;
        run(&mut guarded, &req).await;
        run(&mut metered, &req).await;
        run(&mut traced, &req).await;
        for _ in 0..ROUNDS {
            results[0].push(ns_per_call(run(&mut bare, &req).await));
            results[1].push(ns_per_call(run(&mut guarded, &req).await));
            results[2].push(ns_per_call(run(&mut metered, &req).await));
            results[3].push(ns_per_call(run(&mut traced, &req).await));
        }
    });
    let [bare, guarded, metered, traced] = results.map(median);
    println!("| stack | ns/call (median of {ROUNDS} × {CALLS}) | added vs bare | ratio |");
    println!("|---|---:|---:|---:|");
    for (name, v) in [
        ("bare inner call", bare),
        (
            "guard policy (fallback, breaker, bulkhead, timeout, retry)",
            guarded,
        ),
        ("guard policy + metrics", metered),
        ("guard policy + metrics + trace", traced),
    ] {
        println!("| {name} | {v:.0} | {:.0} | {:.1}× |", v - bare, v / bare);
    }
    #[cfg(feature = "otel")]
    otel_row(&rt, &req, bare);
    #[cfg(feature = "process")]
    pool::compare(&rt, &registry);
    if std::env::var_os("GUARD_BENCH_DETAIL").is_some() {
        detail(&rt, &registry, &req);
    }
    // Keep the registry alive (and its series non-empty) until the end.
    assert!(registry.encode().contains("python_call_total"));
}

/// Each layer alone over the bare call, to see where the time goes (`GUARD_BENCH_DETAIL=1`).
fn detail(rt: &tokio::runtime::Runtime, registry: &Registry, req: &Request) {
    use tandem::guard::{
        BreakerConfig, BreakerLayer, BulkheadLayer, FallbackLayer, ObserveLayer, RetryLayer,
        RetryPolicy, TimeoutLayer,
    };
    let inner = service_fn(|_req: Request| async { Ok::<_, Error>(Response::default()) });
    rt.block_on(async {
        let median_of = |v: Vec<f64>| median(v);
        macro_rules! row {
            ($name:expr, $svc:expr) => {{
                let mut svc = $svc;
                run(&mut svc, req).await;
                let mut v = Vec::new();
                for _ in 0..ROUNDS {
                    v.push(ns_per_call(run(&mut svc, req).await));
                }
                println!("| {} | {:.0} |", $name, median_of(v));
            }};
        }
        println!();
        println!("| one layer | ns/call |");
        println!("|---|---:|");
        row!("bare", inner);
        row!(
            "fallback",
            FallbackLayer::new("f", |_: &Error, _: &Request| None).layer(inner)
        );
        row!(
            "observe (metrics)",
            ObserveLayer::new(Arc::new(registry.clone()), Transport::Pool).layer(inner)
        );
        row!(
            "breaker",
            BreakerLayer::new(BreakerConfig::new("b")).layer(inner)
        );
        row!(
            "bulkhead",
            BulkheadLayer::new("k", Transport::Pool, 100).layer(inner)
        );
        row!(
            "timeout",
            TimeoutLayer::new(Transport::Pool, Duration::from_secs(1)).layer(inner)
        );
        row!("retry", RetryLayer::new(RetryPolicy::new("r")).layer(inner));
        row!("trace", TraceLayer::new().layer(inner));
    });
}

/// Bare pool calls vs `Policy` + `MetricsLayer` over the same pool, interleaved.
#[cfg(feature = "process")]
mod pool {
    use super::*;
    use tandem::metrics::MetricsLayer;
    use tandem::process::{default_python, Pool};

    const POOL_CALLS: u32 = 3_000;
    /// Paired rounds of the pool comparison.
    const POOL_ROUNDS: usize = 21;
    const APP: &str = "import tandem\napp = tandem.App('bench')\n\n@app.handler('echo')\ndef echo(p):\n    return p\n";

    async fn run_n<S>(svc: &mut S, req: &Request) -> f64
    where
        S: Service<Request, Response = Response, Error = Error>,
    {
        let start = Instant::now();
        for _ in 0..POOL_CALLS {
            let resp = svc.ready().await.unwrap().call(req.clone()).await.unwrap();
            black_box(resp);
        }
        start.elapsed().as_nanos() as f64 / f64::from(POOL_CALLS)
    }

    pub(super) fn compare(rt: &tokio::runtime::Runtime, registry: &Registry) {
        let dir = std::env::temp_dir().join(format!("tandem-guard-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bench_echo.py"), APP).unwrap();
        let req = Request::new("echo", Payload::raw(vec![b'x'; 100]));
        rt.block_on(async {
            let pool = Pool::builder("bench_echo:app")
                .python(default_python())
                .cwd(dir.clone())
                .workers(2)
                .build()
                .await
                .unwrap();
            let policy = Policy::new("pool-bench", Transport::Pool)
                .fallback(|_, _| Some(Response::new(Payload::raw("degraded"))));
            let mut bare = pool.clone();
            let mut guarded = MetricsLayer::new(registry, Transport::Pool)
                .layer(policy.layer().layer(pool.clone()));
            run_n(&mut bare, &req).await;
            run_n(&mut guarded, &req).await;
            // Pairs of adjacent rounds (bare, then guarded, alternating which goes first) see
            // the same machine; the median of the pairs' differences is the added cost, far less
            // noisy than the difference of two medians of ~65 µs calls.
            let (mut b, mut g, mut added) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..POOL_ROUNDS {
                let (x, y) = if round % 2 == 0 {
                    let x = run_n(&mut bare, &req).await;
                    (x, run_n(&mut guarded, &req).await)
                } else {
                    let y = run_n(&mut guarded, &req).await;
                    (run_n(&mut bare, &req).await, y)
                };
                b.push(x);
                g.push(y);
                added.push(y - x);
            }
            let (b, g, added) = (median(b), median(g), median(added));
            println!();
            println!("| pool echo 100 B, 2 workers, concurrency 1 | ns/call (median of {POOL_ROUNDS} × {POOL_CALLS}) | added (median of paired rounds) | added % |");
            println!("|---|---:|---:|---:|");
            println!("| bare pool call | {b:.0} | 0 | 0.0 % |");
            println!(
                "| Policy + MetricsLayer over the pool | {g:.0} | {added:.0} | {:.1} % |",
                added / b * 100.0
            );
            pool.shutdown().await;
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The OpenTelemetry layer alone over the bare call, with a provider that keeps every span
/// (sampled, ended, handed to a no-op batch of processors): the span's own cost.
#[cfg(feature = "otel")]
fn otel_row(rt: &tokio::runtime::Runtime, req: &Request, bare: f64) {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let inner = service_fn(|_req: Request| async { Ok::<_, Error>(Response::default()) });
    let mut otel = tandem::otel::OtelLayer::new(&provider, Transport::Pool).layer(inner);
    let mut v = Vec::new();
    rt.block_on(async {
        run(&mut otel, req).await;
        for _ in 0..ROUNDS {
            v.push(ns_per_call(run(&mut otel, req).await));
        }
    });
    let v = median(v);
    println!(
        "| OtelLayer alone (span per call, no exporter) | {v:.0} | {:.0} | {:.1}× |",
        v - bare,
        v / bare
    );
}
