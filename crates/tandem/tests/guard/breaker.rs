use std::time::Duration;

use tandem::guard::{BreakerConfig, BreakerLayer, BreakerState, ManualClock};
use tandem::Error;
use tower::{Layer, Service, ServiceExt};

use crate::stub::{req, Stub};

fn breaker(clock: &ManualClock) -> (BreakerLayer, Stub) {
    let config = BreakerConfig::new("risk").clock(clock.clock());
    (BreakerLayer::new(config), Stub::new())
}

async fn call<S>(svc: &mut S, method: &str) -> Result<tandem::Response, Error>
where
    S: tower::Service<tandem::Request, Response = tandem::Response, Error = Error>,
{
    svc.ready().await?.call(req(method)).await
}

/// Drives a fresh breaker to open with hystrix's defaults: 10 ok then 10 failures.
async fn trip<S>(svc: &mut S)
where
    S: tower::Service<tandem::Request, Response = tandem::Response, Error = Error>,
{
    for _ in 0..10 {
        call(svc, "ok").await.unwrap();
    }
    for _ in 0..10 {
        assert!(matches!(
            call(svc, "down").await,
            Err(Error::Unavailable { .. })
        ));
    }
}

#[tokio::test]
async fn breaker_opens_at_the_threshold_then_half_opens_and_closes() {
    let clock = ManualClock::new();
    let (layer, stub) = breaker(&clock);
    let handle = layer.handle();
    let mut svc = layer.layer(stub.clone());

    // 10 ok + 9 failures: 19 requests, below the volume threshold of 20.
    for _ in 0..10 {
        call(&mut svc, "ok").await.unwrap();
    }
    for _ in 0..9 {
        call(&mut svc, "down").await.unwrap_err();
    }
    assert_eq!(handle.state(), BreakerState::Closed);
    // The 20th request makes 10 errors of 20 = 50 %: open.
    call(&mut svc, "down").await.unwrap_err();
    assert_eq!(handle.state(), BreakerState::Open);

    let before = stub.calls();
    let err = call(&mut svc, "ok").await.unwrap_err();
    match &err {
        Error::BreakerOpen { name, retry_in } => {
            assert_eq!(name, "risk");
            assert_eq!(*retry_in, Duration::from_secs(5));
        }
        other => panic!("expected BreakerOpen, got {other:?}"),
    }
    assert!(err.to_string().contains("circuit breaker open: risk"));
    assert_eq!(
        stub.calls(),
        before,
        "an open breaker must not call the dependency"
    );

    clock.advance(Duration::from_millis(4_999));
    assert!(matches!(
        call(&mut svc, "ok").await,
        Err(Error::BreakerOpen { .. })
    ));

    clock.advance(Duration::from_millis(1));
    call(&mut svc, "ok").await.unwrap();
    assert_eq!(handle.state(), BreakerState::Closed);
    assert_eq!(stub.calls(), before + 1);
    // The window was cleared on closing: one failure does not re-open it.
    call(&mut svc, "down").await.unwrap_err();
    assert_eq!(handle.state(), BreakerState::Closed);
}

#[tokio::test]
async fn failed_trial_reopens_for_another_sleep_window() {
    let clock = ManualClock::new();
    let (layer, stub) = breaker(&clock);
    let handle = layer.handle();
    let mut svc = layer.layer(stub.clone());
    trip(&mut svc).await;
    clock.advance(Duration::from_secs(5));
    assert!(matches!(
        call(&mut svc, "down").await,
        Err(Error::Unavailable { .. })
    ));
    assert_eq!(handle.state(), BreakerState::Open);
    match call(&mut svc, "ok").await {
        Err(Error::BreakerOpen { retry_in, .. }) => assert_eq!(retry_in, Duration::from_secs(5)),
        other => panic!("expected BreakerOpen, got {other:?}"),
    }
    clock.advance(Duration::from_secs(5));
    call(&mut svc, "ok").await.unwrap();
    assert_eq!(handle.state(), BreakerState::Closed);
}

#[tokio::test]
async fn only_one_trial_runs_while_half_open() {
    let clock = ManualClock::new();
    let (layer, stub) = breaker(&clock);
    let handle = layer.handle();
    let mut svc = layer.layer(stub.clone());
    trip(&mut svc).await;
    clock.advance(Duration::from_secs(5));

    let trial = svc.ready().await.unwrap().call(req("gate"));
    let trial = tokio::spawn(trial);
    tandem_wait(|| stub.calls() == 21).await;
    assert_eq!(handle.state(), BreakerState::HalfOpen);
    for _ in 0..3 {
        assert!(matches!(
            call(&mut svc, "ok").await,
            Err(Error::BreakerOpen { .. })
        ));
    }
    assert_eq!(stub.calls(), 21, "only the trial reached the dependency");
    stub.gate.add_permits(1);
    trial.await.unwrap().unwrap();
    assert_eq!(handle.state(), BreakerState::Closed);
}

#[tokio::test]
async fn dropped_trial_reopens_the_breaker() {
    let clock = ManualClock::new();
    let (layer, stub) = breaker(&clock);
    let handle = layer.handle();
    let mut svc = layer.layer(stub.clone());
    trip(&mut svc).await;
    clock.advance(Duration::from_secs(5));
    let trial = svc.ready().await.unwrap().call(req("hang"));
    assert_eq!(handle.state(), BreakerState::HalfOpen);
    drop(trial);
    assert_eq!(handle.state(), BreakerState::Open);
    // The next trial comes one sleep window after the dropped one started.
    assert!(matches!(
        call(&mut svc, "ok").await,
        Err(Error::BreakerOpen { .. })
    ));
    clock.advance(Duration::from_secs(5));
    call(&mut svc, "ok").await.unwrap();
    assert_eq!(handle.state(), BreakerState::Closed);
}

#[tokio::test]
async fn bad_requests_do_not_trip_the_breaker() {
    let clock = ManualClock::new();
    let (layer, stub) = breaker(&clock);
    let handle = layer.handle();
    let mut svc = layer.layer(stub);
    for _ in 0..50 {
        assert!(matches!(
            call(&mut svc, "bad").await,
            Err(Error::BadRequest { .. })
        ));
    }
    assert_eq!(handle.state(), BreakerState::Closed);
    // They count as requests, diluting the error rate: 50 bad + 40 down = 44 %.
    for _ in 0..40 {
        call(&mut svc, "down").await.unwrap_err();
    }
    assert_eq!(handle.state(), BreakerState::Closed);
}

#[tokio::test]
async fn every_failure_kind_counts_and_old_buckets_roll_out() {
    let clock = ManualClock::new();
    let (layer, stub) = breaker(&clock);
    let handle = layer.handle();
    let mut svc = layer.layer(stub);
    for method in ["down", "raise", "busy"].iter().cycle().take(15) {
        call(&mut svc, method).await.unwrap_err();
    }
    assert_eq!(
        handle.state(),
        BreakerState::Closed,
        "15 requests are below the volume"
    );
    // 11 s later those 15 have left the 10 s window: 10 new failures are still too few.
    clock.advance(Duration::from_secs(11));
    for _ in 0..10 {
        call(&mut svc, "down").await.unwrap_err();
    }
    assert_eq!(handle.state(), BreakerState::Closed);
    for _ in 0..10 {
        call(&mut svc, "raise").await.unwrap_err();
    }
    assert_eq!(handle.state(), BreakerState::Open);
}

#[tokio::test]
async fn configured_thresholds_apply() {
    let clock = ManualClock::new();
    let config = BreakerConfig::new("fx")
        .clock(clock.clock())
        .request_volume_threshold(10)
        .error_percent_threshold(30)
        .sleep_window(Duration::from_secs(1));
    let layer = BreakerLayer::new(config);
    let handle = layer.handle();
    let mut svc = layer.layer(Stub::new());
    for _ in 0..7 {
        call(&mut svc, "ok").await.unwrap();
    }
    for _ in 0..2 {
        call(&mut svc, "down").await.unwrap_err();
    }
    assert_eq!(handle.state(), BreakerState::Closed);
    call(&mut svc, "down").await.unwrap_err(); // 3 of 10 = 30 %
    assert_eq!(handle.state(), BreakerState::Open);
    clock.advance(Duration::from_secs(1));
    call(&mut svc, "ok").await.unwrap();
    assert_eq!(handle.state(), BreakerState::Closed);
}

/// Polls `cond` on the runtime until it holds (bounded, so a bug fails instead of hanging).
pub async fn tandem_wait(cond: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition not reached");
}
