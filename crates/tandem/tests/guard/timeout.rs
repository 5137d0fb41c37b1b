use std::time::{Duration, Instant};

use tandem::guard::TimeoutLayer;
use tandem::{Error, Transport};
use tower::{Layer, ServiceExt};

use crate::stub::{req, Stub};

#[tokio::test(start_paused = true)]
async fn timeout_sets_the_deadline_and_returns_timeout() {
    let stub = Stub::new();
    let svc = TimeoutLayer::new(Transport::Pool, Duration::from_millis(100)).layer(stub.clone());
    let before = Instant::now();
    let err = svc.oneshot(req("hang")).await.unwrap_err();
    match &err {
        Error::Timeout {
            transport,
            target,
            elapsed,
        } => {
            assert_eq!(*transport, Transport::Pool);
            assert_eq!(target, "hang");
            assert!(*elapsed >= Duration::from_millis(100), "{elapsed:?}");
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(err.to_string().contains("pool call timed out: hang"));
    let deadline = stub.last_seen().metadata().deadline.expect("deadline set");
    assert!(deadline > before && deadline <= Instant::now() + Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn an_earlier_deadline_of_the_caller_wins() {
    let stub = Stub::new();
    let svc = TimeoutLayer::new(Transport::Grpc, Duration::from_secs(10)).layer(stub.clone());
    let req = req("ok").with_timeout(Duration::from_millis(20));
    let caller_deadline = req.metadata().deadline.unwrap();
    svc.oneshot(req).await.unwrap();
    assert_eq!(stub.last_seen().metadata().deadline, Some(caller_deadline));
}

#[tokio::test]
async fn a_call_past_its_deadline_is_not_sent() {
    let stub = Stub::new();
    let svc = TimeoutLayer::new(Transport::Plugin, Duration::from_secs(1)).layer(stub.clone());
    let mut late = req("ok");
    late.metadata_mut().deadline = Some(Instant::now());
    let err = svc.oneshot(late).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(stub.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn fast_calls_pass_untouched() {
    let stub = Stub::new();
    let svc = TimeoutLayer::new(Transport::Pool, Duration::from_secs(1)).layer(stub.clone());
    let resp = svc.oneshot(req("ok")).await.unwrap();
    assert_eq!(resp.payload().bytes().as_ref(), b"ok");
}
