//! `make demo`: a pool of Python workers serving `examples/process-pool/service.py`.
//!
//! Shows ordinary calls, a handler error, a worker crash that the pool survives (the next calls
//! succeed and the restart is counted), a timeout that kills only that call's worker, a one-shot
//! script, and a short latency table. Run it with `make demo`, or:
//!
//! ```text
//! cargo run --release -p tandem --features process --example process-demo
//! ```
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use tandem::bench::{self, Limit};
use tandem::process::{default_python, Pool, Script};
use tandem::{Error, Payload, Request};

fn service_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/process-pool")
}

fn call(method: &str, value: serde_json::Value) -> Request {
    Request::new(method, Payload::json(&value).expect("json payload"))
}

fn show_error(e: &Error) {
    println!("    error ({}): {e}", e.kind());
    println!("    hint: {}", e.hint());
}

#[tokio::main]
async fn main() {
    let python = default_python();
    println!("tandem process demo");
    println!("  python: {}", python.display());
    println!("  app:    examples/process-pool/service.py (service:app), 2 workers\n");

    let started = Instant::now();
    let pool = match Pool::builder("service:app")
        .workers(2)
        .python(python.clone())
        .cwd(service_dir())
        .timeout(Duration::from_secs(5))
        .build()
        .await
    {
        Ok(p) => p,
        Err(e) => {
            show_error(&e);
            std::process::exit(2);
        }
    };
    println!(
        "1. pool ready in {:?}; methods: {:?}",
        started.elapsed(),
        pool.methods()
    );

    println!("\n2. ordinary calls");
    for (amount, age) in [(120.0, 400), (9_500.0, 12), (4_000.0, 3)] {
        let resp = pool
            .call(call(
                "score",
                json!({"amount": amount, "account_age_days": age}),
            ))
            .await
            .expect("score");
        let v: serde_json::Value = resp.decode().expect("json answer");
        println!("    score(amount={amount}, age={age}d) = {v}");
    }

    println!("\n3. a handler that raises: the error comes back typed, the worker stays up");
    if let Err(e) = pool.call(call("fail", json!({"amt": 1}))).await {
        show_error(&e);
    }

    println!("\n4. a handler that crashes its worker (os._exit)");
    let before = pool.stats();
    match pool.call(call("crash", json!(null))).await {
        Ok(r) => println!("    unexpected answer {:?}", r.payload()),
        Err(e) => show_error(&e),
    }
    let mut ok = 0;
    for i in 0..10 {
        if pool.call(call("echo", json!(i))).await.is_ok() {
            ok += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    // The replacement worker starts in the background; wait (bounded) until it is up.
    while (pool.stats().restarts <= before.restarts || pool.stats().workers < 2)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = pool.stats();
    println!("    next 10 calls: {ok} succeeded");
    println!(
        "    restarts: {} -> {}; workers now {} ({} idle)",
        before.restarts, after.restarts, after.workers, after.idle
    );

    println!("\n5. a call past its deadline: only that call fails, its worker is replaced");
    let t0 = Instant::now();
    match pool
        .call(call("slow", json!(30)).with_timeout(Duration::from_millis(300)))
        .await
    {
        Ok(_) => println!("    unexpected success"),
        Err(e) => {
            show_error(&e);
            println!("    returned after {:?}", t0.elapsed());
        }
    }
    match pool.call(call("echo", json!("still here"))).await {
        Ok(r) => println!(
            "    next call answered {}",
            r.payload().to_json_value().unwrap()
        ),
        Err(e) => show_error(&e),
    }

    println!("\n6. a one-shot script (a process per call: fine for rare jobs, not hot paths)");
    let script = Script::builder(python)
        .args([service_dir().join("report.py")])
        .timeout(Duration::from_secs(10))
        .build();
    let t0 = Instant::now();
    match script.run(Payload::json(&json!([3, 1, 2])).unwrap()).await {
        Ok(p) => println!(
            "    report.py answered {} in {:?}",
            p.to_json_value().unwrap(),
            t0.elapsed()
        ),
        Err(e) => show_error(&e),
    }

    println!("\n7. latency through the pool (echo, json, 2 workers)");
    println!(
        "    {:>8} {:>5} {:>7} {:>10} {:>10} {:>10}",
        "payload", "conc", "calls", "p50 µs", "p99 µs", "calls/s"
    );
    for (bytes, conc, calls) in [(100, 1, 2000), (100, 16, 4000), (64 * 1024, 1, 300)] {
        let cfg = bench::Config::new("echo")
            .payload_bytes(bytes)
            .concurrency(conc)
            .limit(Limit::Calls(calls))
            .timeout(Some(Duration::from_secs(5)));
        let r = bench::run(pool.clone(), &cfg).await;
        let errors = if r.errors > 0 {
            format!("  ({} errors)", r.errors)
        } else {
            String::new()
        };
        println!(
            "    {:>7}B {:>5} {:>7} {:>10.1} {:>10.1} {:>10.0}{errors}",
            bytes, conc, r.calls, r.p50_us, r.p99_us, r.throughput_per_s
        );
    }

    let s = pool.stats();
    println!(
        "\n8. shutting down: {} workers, {} restarts, {} recycled",
        s.workers, s.restarts, s.recycled
    );
    pool.shutdown().await;
    println!("done.");
}
