use std::time::Duration;

use tandem::guard::{BreakerConfig, BreakerLayer, FallbackLayer, ManualClock, Triggers};
use tandem::{Error, ErrorKind, Payload, Request, Response};
use tower::{Layer, Service, ServiceExt};

use crate::stub::{req, Stub};

fn degraded(err: &Error, req: &Request) -> Option<Response> {
    Some(Response::new(Payload::raw(format!(
        "degraded {} after {}",
        req.method(),
        err.kind()
    ))))
}

#[tokio::test]
async fn fallback_answers_while_the_breaker_is_open() {
    let clock = ManualClock::new();
    let breaker = BreakerLayer::new(
        BreakerConfig::new("score")
            .clock(clock.clock())
            .request_volume_threshold(2),
    );
    let handle = breaker.handle();
    let stub = Stub::new();
    let mut svc = FallbackLayer::new("score", degraded).layer(breaker.layer(stub.clone()));
    let first = svc.ready().await.unwrap().call(req("down")).await.unwrap();
    assert_eq!(
        first.payload().bytes().as_ref(),
        b"degraded down after unavailable"
    );
    svc.ready().await.unwrap().call(req("down")).await.unwrap();
    assert_eq!(handle.state(), tandem::guard::BreakerState::Open);
    let resp = svc.ready().await.unwrap().call(req("ok")).await.unwrap();
    assert_eq!(
        resp.payload().bytes().as_ref(),
        b"degraded ok after breaker_open"
    );
    assert_eq!(stub.calls(), 2);
    clock.advance(Duration::from_secs(5));
    let resp = svc.ready().await.unwrap().call(req("ok")).await.unwrap();
    assert_eq!(resp.payload().bytes().as_ref(), b"ok");
}

#[tokio::test]
async fn bad_requests_are_not_hidden_by_default() {
    let svc = FallbackLayer::new("score", degraded).layer(Stub::new());
    let err = svc.oneshot(req("bad")).await.unwrap_err();
    assert!(matches!(err, Error::BadRequest { .. }));
}

#[tokio::test]
async fn triggers_choose_which_kinds_fall_back() {
    let layer = FallbackLayer::from_parts(
        "score".into(),
        Some(std::sync::Arc::new(degraded)),
        Triggers::only(&[ErrorKind::Timeout, ErrorKind::BreakerOpen]),
        None,
    );
    let err = layer
        .layer(Stub::new())
        .oneshot(req("down"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }));
}

#[tokio::test]
async fn a_fallback_without_an_answer_lets_the_error_through() {
    let svc = FallbackLayer::new("score", |_: &Error, _: &Request| None).layer(Stub::new());
    let err = svc.oneshot(req("raise")).await.unwrap_err();
    assert!(matches!(err, Error::Remote { .. }));
}
