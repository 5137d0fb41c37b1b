//! The guard `Policy` (breaker + timeout + bulkhead + fallback) over the real queue Producer.

use std::time::Duration;

use serde_json::json;
use tandem::guard::{BreakerConfig, BreakerState, Policy};
use tandem::queue::Producer;
use tandem::{Error, Payload, Request, Response, Transport};
use tower::{Service, ServiceExt};

use crate::harness::{Consumer, Redis};
use crate::support;

fn degraded(_: &Error, _: &Request) -> Option<Response> {
    Some(Response::new(Payload::raw("degraded")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_over_producer_answers_then_falls_back_when_redis_dies() {
    let mut redis = Redis::start("policy", false);
    let dir = support::test_dir("queue-policy");
    let uri = format!("{}/pol", redis.url());
    let producer = Producer::from_uri(&uri).await.unwrap();
    let mut c = Consumer::start(&dir, &redis, "pol", &["--group", "tandem"]);
    let policy = Policy::new("report", Transport::Queue)
        .timeout(Duration::from_secs(10))
        .max_concurrent(4)
        .breaker(
            BreakerConfig::new("report")
                .request_volume_threshold(3)
                .window(Duration::from_secs(60), 6),
        )
        .no_retry()
        .fallback(degraded);
    let layer = policy.layer();
    let mut svc = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service(producer);

    // Through the whole stack, publish_and_wait gets the consumer's answer.
    let resp = svc
        .ready()
        .await
        .unwrap()
        .call(Request::new(
            "add",
            Payload::json(&json!({"a": 1, "b": 2})).unwrap(),
        ))
        .await
        .unwrap();
    let answer = resp.payload().to_json_value().unwrap();
    assert_eq!(answer["sum"], json!(3), "{}", c.output());
    // The policy's timeout travelled as the task's deadline.
    let left = answer["left"].as_f64().expect("left in the answer");
    assert!(left > 0.0 && left <= 10.0, "{answer}");

    // Redis gone: calls fail, the fallback answers, the breaker opens after the threshold.
    c.kill();
    redis.kill();
    for _ in 0..5 {
        let resp = svc
            .ready()
            .await
            .unwrap()
            .call(Request::new("add", Payload::raw("x")))
            .await
            .unwrap();
        assert_eq!(resp.payload().bytes().as_ref(), b"degraded");
    }
    assert_eq!(layer.breaker().unwrap().state(), BreakerState::Open);
}
