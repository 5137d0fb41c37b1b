//! The cost of the guard stack and metrics per call, beside the bare inner call in the same
//! run (machines are shared and noisy: read the added nanoseconds and the ratio, not the
//! absolute numbers).
//!
//! Run: `CARGO_TARGET_DIR=/work/target cargo bench -p tandem --all-features --bench guard`
//!
//! The inner service is a trivial in-process service, so the numbers are the layers' own
//! overhead: bare call; `Policy` (fallback → breaker → bulkhead → timeout → retry) without
//! metrics; the same with the metrics registry as its observer; and that plus `TraceLayer`.
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
