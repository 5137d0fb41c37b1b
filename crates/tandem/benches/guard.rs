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

/// CPU time of this thread so far, in ns (`/proc/thread-self/schedstat`): the runtime's
/// thread, where the caller, the layers and (for the pool) the socket I/O all run.
fn cpu_ns() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    stat.split_whitespace().next().unwrap().parse().unwrap()
}

/// Wall and CPU ns per call over `calls` sequential calls.
async fn run<S>(svc: &mut S, req: &Request, calls: u32) -> (f64, f64)
where
    S: Service<Request, Response = Response, Error = Error>,
{
    let (start, cpu) = (Instant::now(), cpu_ns());
    for _ in 0..calls {
        let resp = svc.ready().await.unwrap().call(req.clone()).await.unwrap();
        black_box(resp);
    }
    let n = f64::from(calls);
    (start.elapsed().as_nanos() as f64 / n, (cpu_ns() - cpu) / n)
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
    let registry = Registry::new();
    // `GUARD_BENCH_POOL_ONLY=1` runs only the pool comparison (for profiling it).
    #[cfg(feature = "process")]
    if std::env::var_os("GUARD_BENCH_POOL_ONLY").is_some() {
        pool::compare(&rt, &registry);
        return;
    }
    let inner = service_fn(|_req: Request| async { Ok::<_, Error>(Response::default()) });
    let policy = Policy::new("bench", Transport::Pool)
        .fallback(|_, _| Some(Response::new(Payload::raw("degraded"))));
    let observed = policy.clone().observer(Arc::new(registry.clone()));
    let req = Request::new("score", Payload::raw(r#"{"amount": 12}"#));

    let mut bare = inner;
    let mut guarded = policy.layer().layer(inner);
    let mut metered = observed.layer().layer(inner);
    let mut traced = TraceLayer::new().layer(observed.layer().layer(inner));

    // A call that is still pending when first polled (as every real transport call is): every
    // layer's future is polled twice and the timeout registers its timer.
    let pending = service_fn(|_req: Request| async {
        tokio::task::yield_now().await;
        Ok::<_, Error>(Response::default())
    });
    let mut bare_pending = pending;
    let mut metered_pending = observed.layer().layer(pending);

    let mut results: [Vec<f64>; 6] = Default::default();
    rt.block_on(async {
        // Warm up every path (allocator, label maps), then interleave the rounds.
        run(&mut bare, &req, CALLS).await;
        run(&mut guarded, &req, CALLS).await;
        run(&mut metered, &req, CALLS).await;
        run(&mut traced, &req, CALLS).await;
        run(&mut bare_pending, &req, CALLS).await;
        run(&mut metered_pending, &req, CALLS).await;
        for _ in 0..ROUNDS {
            results[0].push(run(&mut bare, &req, CALLS).await.0);
            results[1].push(run(&mut guarded, &req, CALLS).await.0);
            results[2].push(run(&mut metered, &req, CALLS).await.0);
            results[3].push(run(&mut traced, &req, CALLS).await.0);
            results[4].push(run(&mut bare_pending, &req, CALLS).await.0);
            results[5].push(run(&mut metered_pending, &req, CALLS).await.0);
        }
    });
    let [bare, guarded, metered, traced, bare_pending, metered_pending] = results.map(median);
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
    println!("| bare inner call, pending once | {bare_pending:.0} | 0 | 1.0× |");
    println!(
        "| guard policy + metrics, pending once | {metered_pending:.0} | {:.0} | {:.1}× |",
        metered_pending - bare_pending,
        metered_pending / bare_pending
    );
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
                run(&mut svc, req, CALLS).await;
                let mut v = Vec::new();
                for _ in 0..ROUNDS {
                    v.push(run(&mut svc, req, CALLS).await.0);
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
    const POOL_ROUNDS: usize = 41;
    const APP: &str = "import tandem\napp = tandem.App('bench')\n\n@app.handler('echo')\ndef echo(p):\n    return p\n";

    /// Medians over paired rounds of `bare` and `other`.
    struct Paired {
        bare_wall: f64,
        other_wall: f64,
        wall_added: f64,
        bare_cpu: f64,
        cpu_added: f64,
    }

    /// Pairs of adjacent rounds (bare, then the other, alternating which goes first) see the
    /// same machine; the median of the pairs' differences is the added cost, far less noisy
    /// than the difference of two medians of ~40 µs calls. Wall time also carries the Python
    /// workers' scheduling noise; this thread's CPU time per call does not, and the stack's
    /// cost is CPU spent here.
    async fn paired<A, B>(bare: &mut A, other: &mut B, req: &Request) -> Paired
    where
        A: Service<Request, Response = Response, Error = Error>,
        B: Service<Request, Response = Response, Error = Error>,
    {
        run(bare, req, POOL_CALLS).await;
        run(other, req, POOL_CALLS).await;
        let (mut b, mut o, mut added, mut b_cpu, mut cpu_added) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 0..POOL_ROUNDS {
            let (x, y) = if round % 2 == 0 {
                let x = run(bare, req, POOL_CALLS).await;
                (x, run(other, req, POOL_CALLS).await)
            } else {
                let y = run(other, req, POOL_CALLS).await;
                (run(bare, req, POOL_CALLS).await, y)
            };
            b.push(x.0);
            o.push(y.0);
            added.push(y.0 - x.0);
            b_cpu.push(x.1);
            cpu_added.push(y.1 - x.1);
        }
        Paired {
            bare_wall: median(b),
            other_wall: median(o),
            wall_added: median(added),
            bare_cpu: median(b_cpu),
            cpu_added: median(cpu_added),
        }
    }

    fn print_row(name: &str, p: &Paired) {
        println!(
            "| {name} | {:.0} | {:.0} | {:.1} % | {:.0} | {:.0} |",
            p.other_wall,
            p.wall_added,
            p.wall_added / p.bare_wall * 100.0,
            p.bare_cpu + p.cpu_added,
            p.cpu_added
        );
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
            let p = paired(&mut bare, &mut guarded, &req).await;
            println!();
            println!("| pool echo 100 B, 2 workers, concurrency 1 | wall ns/call (median of {POOL_ROUNDS} × {POOL_CALLS}) | wall added (median of paired rounds) | added % | Rust CPU ns/call | CPU added (median of pairs) |");
            println!("|---|---:|---:|---:|---:|---:|");
            println!(
                "| bare pool call | {:.0} | 0 | 0.0 % | {:.0} | 0 |",
                p.bare_wall, p.bare_cpu
            );
            print_row("Policy + MetricsLayer over the pool", &p);
            if std::env::var_os("GUARD_BENCH_DETAIL").is_some() {
                use tandem::guard::TimeoutLayer;
                let mut timeout = TimeoutLayer::new(Transport::Pool, Duration::from_secs(1))
                    .layer(pool.clone());
                print_row(
                    "TimeoutLayer alone",
                    &paired(&mut bare, &mut timeout, &req).await,
                );
                let mut policy_only = policy.layer().layer(pool.clone());
                print_row(
                    "Policy alone",
                    &paired(&mut bare, &mut policy_only, &req).await,
                );
                let mut metrics_only = MetricsLayer::new(registry, Transport::Pool).layer(pool.clone());
                print_row(
                    "MetricsLayer alone",
                    &paired(&mut bare, &mut metrics_only, &req).await,
                );
            }
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
        run(&mut otel, req, CALLS).await;
        for _ in 0..ROUNDS {
            v.push(run(&mut otel, req, CALLS).await.0);
        }
    });
    let v = median(v);
    println!(
        "| OtelLayer alone (span per call, no exporter) | {v:.0} | {:.0} | {:.1}× |",
        v - bare,
        v / bare
    );
}
