//! A Python dependency goes down; the breaker opens and the fallback answers in its place.
//!
//! Run: `cargo run -p tandem --features metrics --example guard_fallback`
//!
//! The "dependency" is an in-process stand-in for a Python risk-scoring service that is down
//! while the loop makes calls 10 to 21 (an outage), so the example runs anywhere. Put a real transport client in
//! its place (a `process::Pool`, `grpc::Client`, ...) and nothing else changes. Expected
//! output (abridged):
//!
//! ```text
//! call  0: risk 0.03 (python)
//! ...
//! call 10: risk 0.50 (fallback after unavailable)
//! ...
//! call 19: risk 0.50 (fallback after unavailable)   <- 10 of 20 failed: the breaker opens
//! call 20: risk 0.50 (fallback after breaker_open)  <- Python is not called any more
//! ...
//! call 30: risk 0.03 (python)                       <- the trial after the sleep window closed it
//! ...
//! breaker: Closed
//! python was called 30 times
//! python_call_total{method="score",status="breaker_open",transport="grpc"} 10
//! ...
//! ```
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tandem::guard::{BreakerConfig, Policy};
use tandem::metrics::Registry;
use tandem::{Error, Payload, Request, Response, Transport};
use tower::{service_fn, Layer, Service, ServiceExt};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let registry = Registry::new();
    let calls = Arc::new(AtomicU32::new(0));
    let outage = Arc::new(AtomicBool::new(false));
    let (seen, down) = (calls.clone(), outage.clone());
    let python = service_fn(move |_req: Request| {
        seen.fetch_add(1, Ordering::SeqCst);
        let is_down = down.load(Ordering::SeqCst);
        async move {
            if is_down {
                Err(Error::unavailable(
                    Transport::Grpc,
                    "score",
                    "connection refused",
                ))
            } else {
                Ok(Response::new(
                    Payload::json(&json!({"risk": 0.03})).unwrap(),
                ))
            }
        }
    });

    let policy = Policy::new("risk-score", Transport::Grpc)
        .timeout(Duration::from_millis(200))
        // The reference architecture's variant: trip once 10 requests are in the window.
        .breaker(
            BreakerConfig::new("risk-score")
                .request_volume_threshold(10)
                .sleep_window(Duration::from_millis(300)),
        )
        .fallback(|err, _req| {
            let body = json!({"risk": 0.5, "degraded": err.kind().as_str()});
            Some(Response::new(Payload::json(&body).ok()?).with_header("fallback", "true"))
        })
        .observer(registry.observer());
    let layer = policy.layer();
    let mut svc = layer.layer(python);

    for i in 0..40 {
        outage.store((10..22).contains(&i), Ordering::SeqCst);
        let req = Request::new("score", Payload::json(&json!({"amount": 12})).unwrap());
        let resp = svc.ready().await.unwrap().call(req).await.unwrap();
        let body: serde_json::Value = resp.decode().unwrap();
        let source = match body.get("degraded").and_then(|v| v.as_str()) {
            Some(kind) => format!("fallback after {kind}"),
            None => "python".to_owned(),
        };
        println!(
            "call {i:2}: risk {:.2} ({source})",
            body["risk"].as_f64().unwrap_or(0.0)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    println!("breaker: {:?}", layer.breaker().unwrap().state());
    println!("python was called {} times", calls.load(Ordering::SeqCst));
    for line in registry.encode().lines() {
        if line.starts_with("python_call_total") || line.starts_with("tandem_breaker") {
            println!("{line}");
        }
    }
}
