use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem::guard::{ManualClock, RetryBudget, RetryLayer, RetryPolicy};
use tandem::Error;
use tower::{Layer, Service, ServiceExt};

use crate::stub::{req, Stub};

fn flaky(failures: usize) -> Stub {
    let stub = Stub::new();
    stub.flaky_failures.store(failures, Ordering::SeqCst);
    stub
}

#[tokio::test(start_paused = true)]
async fn idempotent_methods_are_retried_until_they_succeed() {
    let stub = flaky(2);
    let svc = RetryLayer::new(RetryPolicy::new("fx").idempotent(["flaky"])).layer(stub.clone());
    svc.oneshot(req("flaky")).await.unwrap();
    assert_eq!(stub.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn an_idempotency_key_makes_a_call_retryable() {
    let stub = flaky(1);
    let svc = RetryLayer::new(RetryPolicy::new("fx")).layer(stub.clone());
    svc.oneshot(req("flaky").with_idempotency_key("order-17"))
        .await
        .unwrap();
    assert_eq!(stub.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn calls_that_are_not_idempotent_are_never_retried() {
    let stub = flaky(1);
    let svc = RetryLayer::new(RetryPolicy::new("fx")).layer(stub.clone());
    assert!(matches!(
        svc.oneshot(req("flaky")).await,
        Err(Error::Unavailable { .. })
    ));
    assert_eq!(stub.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn only_transient_errors_are_retried() {
    let stub = Stub::new();
    let layer = RetryLayer::new(RetryPolicy::new("fx").idempotent(["raise", "bad"]));
    for method in ["raise", "bad"] {
        layer
            .layer(stub.clone())
            .oneshot(req(method))
            .await
            .unwrap_err();
    }
    assert_eq!(stub.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn attempts_are_capped_at_five() {
    let stub = flaky(100);
    let policy = RetryPolicy::new("fx")
        .idempotent(["flaky"])
        .max_attempts(10);
    RetryLayer::new(policy)
        .layer(stub.clone())
        .oneshot(req("flaky"))
        .await
        .unwrap_err();
    assert_eq!(stub.calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn the_budget_limits_retries_to_a_share_of_calls() {
    let clock = ManualClock::new();
    let budget = Arc::new(RetryBudget::with_clock(
        Duration::from_secs(10),
        0,
        0.5,
        clock.clock(),
    ));
    let stub = Stub::new();
    let policy = RetryPolicy::new("fx")
        .idempotent(["down"])
        .max_attempts(2)
        .budget(budget);
    let mut svc = RetryLayer::new(policy).layer(stub.clone());
    for _ in 0..4 {
        svc.ready()
            .await
            .unwrap()
            .call(req("down"))
            .await
            .unwrap_err();
    }
    // 4 calls at 50 % buy 2 retries (after the 2nd and the 4th call).
    assert_eq!(stub.calls(), 6);
    // Once the window has passed, the spent budget is forgotten but so are the calls.
    clock.advance(Duration::from_secs(11));
    svc.ready()
        .await
        .unwrap()
        .call(req("down"))
        .await
        .unwrap_err();
    assert_eq!(stub.calls(), 7);
}

#[tokio::test(start_paused = true)]
async fn no_retry_past_the_deadline() {
    let stub = Stub::new();
    let layer = RetryLayer::new(RetryPolicy::new("fx").idempotent(["down"]));
    let mut late = req("down");
    late.metadata_mut().deadline = Some(Instant::now());
    layer.layer(stub.clone()).oneshot(late).await.unwrap_err();
    assert_eq!(stub.calls(), 1);
    let roomy = req("down").with_timeout(Duration::from_secs(30));
    layer.layer(stub.clone()).oneshot(roomy).await.unwrap_err();
    assert_eq!(stub.calls(), 1 + 3);
}
