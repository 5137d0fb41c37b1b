use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tandem::guard::{BreakerConfig, BreakerState, ManualClock, Observer, Policy, RetryPolicy};
use tandem::{Error, ErrorKind, Payload, Request, Response, Transport};
use tower::{Layer, Service, ServiceExt};

use crate::breaker::tandem_wait;
use crate::stub::{req, Stub};

/// Records the events the layers report, in order.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn push(&self, e: String) {
        self.0.lock().unwrap().push(e);
    }
}

impl Observer for Recorder {
    fn call(&self, t: Transport, method: &str, result: Result<(), ErrorKind>, _: Duration) {
        let status = result.err().map_or("ok", ErrorKind::as_str);
        self.push(format!("call {t} {method} {status}"));
    }
    fn breaker_transition(&self, name: &str, from: BreakerState, to: BreakerState) {
        self.push(format!(
            "breaker {name} {} -> {}",
            from.as_str(),
            to.as_str()
        ));
    }
    fn breaker_rejected(&self, name: &str) {
        self.push(format!("rejected {name}"));
    }
    fn bulkhead_rejected(&self, name: &str) {
        self.push(format!("bulkhead full {name}"));
    }
    fn retried(&self, name: &str, kind: ErrorKind) {
        self.push(format!("retry {name} {kind}"));
    }
    fn fallback_used(&self, name: &str, trigger: ErrorKind) {
        self.push(format!("fallback {name} {trigger}"));
    }
}

fn degraded(_: &Error, _: &Request) -> Option<Response> {
    Some(Response::new(Payload::raw("degraded")))
}

#[test]
fn defaults_are_the_reference_ones() {
    let p = format!("{:?}", Policy::new("risk", Transport::Grpc));
    for want in [
        "timeout: Some(1s)",
        "max_concurrent: Some(100)",
        "request_volume_threshold: 20",
        "error_percent_threshold: 50",
        "sleep_window: 5s",
        "window: 10s",
        "buckets: 10",
    ] {
        assert!(p.contains(want), "{want} missing from {p}");
    }
}

#[tokio::test]
async fn the_stack_runs_in_the_documented_order() {
    let clock = ManualClock::new();
    let recorder = Arc::new(Recorder::default());
    let policy = Policy::new("risk", Transport::Pool)
        .timeout(Duration::from_secs(1))
        .max_concurrent(1)
        .breaker(
            BreakerConfig::new("risk")
                .clock(clock.clock())
                .request_volume_threshold(2),
        )
        .retry(RetryPolicy::new("risk").idempotent(["flaky"]))
        .fallback(degraded)
        .observer(recorder.clone());
    let layer = policy.layer();
    let stub = Stub::new();
    let mut svc = layer.layer(stub.clone());

    // Retry sits inside the observer: one logical call, retried once inside, seen as one ok
    // call; the timeout sits outside retry, so the stub saw the deadline.
    stub.flaky_failures.store(1, Ordering::SeqCst);
    svc.ready().await.unwrap().call(req("flaky")).await.unwrap();
    assert_eq!(stub.calls(), 2);
    assert!(stub.last_seen().metadata().deadline.is_some());

    // The bulkhead sits inside the breaker: its rejection counts as a failure (1 of 2 calls
    // is 50 %: open); the fallback sits outside the observer: the caller gets the degraded
    // answer, the metrics the truth.
    let _hung = svc.ready().await.unwrap().call(req("gate"));
    let resp = svc.ready().await.unwrap().call(req("ok")).await.unwrap();
    assert_eq!(resp.payload().bytes().as_ref(), b"degraded");
    assert_eq!(layer.breaker().unwrap().state(), BreakerState::Open);
    let resp = svc.ready().await.unwrap().call(req("ok")).await.unwrap();
    assert_eq!(resp.payload().bytes().as_ref(), b"degraded");

    assert_eq!(
        recorder.events(),
        [
            "breaker risk closed -> closed",
            "retry risk unavailable",
            "call pool flaky ok",
            "bulkhead full risk",
            "breaker risk closed -> open",
            "call pool ok overloaded",
            "fallback risk overloaded",
            "rejected risk",
            "call pool ok breaker_open",
            "fallback risk breaker_open",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_timeout_covers_every_retry() {
    let stub = Stub::new();
    let policy = Policy::new("slow", Transport::Grpc)
        .timeout(Duration::from_millis(50))
        .retry(RetryPolicy::new("slow").idempotent(["hang"]));
    let svc = policy.layer().layer(stub.clone());
    let err = svc.oneshot(req("hang")).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(stub.calls(), 1);
}

#[tokio::test]
async fn pieces_can_be_switched_off() {
    let stub = Stub::new();
    let policy = Policy::new("bare", Transport::Queue)
        .no_timeout()
        .no_bulkhead()
        .no_breaker()
        .no_retry();
    let layer = policy.layer();
    assert!(layer.breaker().is_none());
    let mut svc = layer.layer(stub.clone());
    let running = tokio::spawn(svc.ready().await.unwrap().call(req("gate")));
    tandem_wait(|| stub.calls() == 1).await;
    for _ in 0..30 {
        svc.ready()
            .await
            .unwrap()
            .call(req("down"))
            .await
            .unwrap_err();
    }
    svc.ready().await.unwrap().call(req("ok")).await.unwrap();
    assert!(stub.last_seen().metadata().deadline.is_none());
    stub.gate.add_permits(1);
    running.await.unwrap().unwrap();
}
