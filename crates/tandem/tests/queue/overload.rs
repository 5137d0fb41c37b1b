//! Backpressure: reject past the high-water mark, or wait for consumers to catch up.

use std::time::Duration;

use serde_json::json;
use tandem::queue::{Backpressure, Producer};
use tandem::{Error, Payload, Request};

use crate::harness::{Consumer, Redis};
use crate::support;

fn req(n: u64) -> Request {
    Request::new("record", Payload::json(&json!({ "n": n })).unwrap())
}

#[tokio::test]
async fn publish_is_rejected_past_the_high_water_mark() {
    let redis = Redis::start("reject", false);
    let p = Producer::builder(redis.url(), "jobs")
        .group("g")
        .high_water(50)
        .build()
        .await
        .unwrap();
    let mut accepted = 0;
    let err = loop {
        match p.publish(req(accepted)).await {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted <= 1000, "never rejected");
    };
    assert_eq!(accepted, 50);
    match err {
        Error::Overloaded { limit, target, .. } => {
            assert_eq!(limit, 50);
            assert!(target.contains("high-water"), "{target}");
        }
        other => panic!("expected Overloaded, got {other:?}"),
    }
    let batch = p.publish_batch(vec![req(1), req(2)]).await;
    assert!(matches!(batch, Err(Error::Overloaded { .. })), "{batch:?}");
}

#[tokio::test]
async fn publish_waits_for_consumers_in_wait_mode() {
    let redis = Redis::start("wait", false);
    let p = Producer::builder(redis.url(), "jobs")
        .group("g")
        .high_water(20)
        .backpressure(Backpressure::Wait(Duration::from_millis(200)))
        .build()
        .await
        .unwrap();
    for n in 0..20 {
        p.publish(req(n)).await.unwrap();
    }
    // Nobody consumes: waiting ends in Overloaded after the wait limit.
    let e = p.publish(req(20)).await.unwrap_err();
    assert!(matches!(e, Error::Overloaded { .. }), "{e:?}");
    // A consumer drains the stream: the same publish now waits and succeeds.
    let dir = support::test_dir("queue-wait");
    let _c = Consumer::start(&dir, &redis, "jobs", &[]);
    let p = Producer::builder(redis.url(), "jobs")
        .group("g")
        .high_water(20)
        .backpressure(Backpressure::Wait(Duration::from_secs(30)))
        .build()
        .await
        .unwrap();
    for n in 20..200 {
        p.publish(req(n)).await.unwrap();
    }
    let all = support::wait_until(Duration::from_secs(30), || {
        redis.query::<u64>(redis::cmd("SCARD").arg("handled")) == 200
    })
    .await;
    assert!(all, "not every task was handled");
}
