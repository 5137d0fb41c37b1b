//! The Redis 8.x paths, detected at run time: each test asserts what the server it runs on
//! does (`make test` runs this suite on the apt Redis 7.0 and on the built Redis 8.6).

use std::time::Duration;

use serde_json::json;
use tandem::queue::Producer;
use tandem::{Error, Payload, Request};

use crate::harness::{Consumer, Redis};
use crate::support;

fn record(n: u32, key: &str) -> Request {
    Request::new("record", Payload::json(&json!({ "n": n })).unwrap())
        .with_idempotency_key(key)
        .with_timeout(Duration::from_secs(20))
}

#[tokio::test]
async fn a_duplicate_keyed_publish_is_dropped_by_xadd_idmp_on_8_6() {
    let redis = Redis::start("idmp", false);
    let f = redis.features();
    let p = Producer::builder(redis.url(), "jobs")
        .group("g")
        .idmp_window(Duration::from_secs(300), 1000)
        .build()
        .await
        .unwrap();
    let first = p.publish(record(1, "order-1")).await.unwrap();
    let again = p.publish(record(1, "order-1")).await.unwrap();
    let other = p.publish(record(2, "order-2")).await.unwrap();
    let len: u64 = redis.query(redis::cmd("XLEN").arg("jobs"));
    if f.idmp() {
        assert_eq!(
            again, first,
            "the retry names the task already in the stream"
        );
        assert_eq!(len, 2, "XADD IDMP dropped the duplicate");
        let cfg: redis::Value = redis.query(redis::cmd("XINFO").arg("STREAM").arg("jobs"));
        let text = format!("{cfg:?}");
        assert!(
            text.contains("idmp-duration") && text.contains("300"),
            "{text}"
        );
    } else {
        // Redis < 8.6: both are written; the consumer's --dedup-ttl skips the second run.
        assert_ne!(again, first);
        assert_eq!(len, 3);
    }
    assert_ne!(other, first);
    // A second producer with another IDMP id is a different publisher: not deduplicated.
    let q = Producer::builder(redis.url(), "jobs")
        .group("g")
        .idmp_producer("billing")
        .build()
        .await
        .unwrap();
    q.publish(record(1, "order-1")).await.unwrap();
    let len2: u64 = redis.query(redis::cmd("XLEN").arg("jobs"));
    assert_eq!(len2, len + 1);
}

#[tokio::test]
async fn a_retried_publish_and_wait_gets_the_result_of_the_first_publish() {
    let redis = Redis::start("idmp-wait", false);
    let f = redis.features();
    let p = Producer::builder(redis.url(), "jobs")
        .group("g")
        .build()
        .await
        .unwrap();
    // No consumer yet: the first call times out with its task in the stream.
    let short = record(7, "pay-7").with_timeout(Duration::from_millis(300));
    match p.publish_and_wait(short).await {
        Err(Error::Timeout { target, .. }) => {
            assert!(target.contains("record on jobs"), "{target}")
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    let dir = support::test_dir("queue-idmp-wait");
    let _c = Consumer::start(&dir, &redis, "jobs", &[]);
    let resp = p.publish_and_wait(record(7, "pay-7")).await.unwrap();
    let v: serde_json::Value = resp.decode().unwrap();
    assert_eq!(v["n"], 7);
    let want = if f.idmp() { 1 } else { 2 };
    let ran = support::wait_until(Duration::from_secs(20), || {
        redis.query::<Option<u64>>(redis::cmd("GET").arg("calls")) == Some(want)
    })
    .await;
    let calls: Option<u64> = redis.query(redis::cmd("GET").arg("calls"));
    assert!(ran, "handler calls {calls:?}, expected {want}");
    if f.idmp() {
        // Another producer retrying the same key cannot get the result: a clear error.
        let q = Producer::builder(redis.url(), "jobs")
            .group("g")
            .build()
            .await
            .unwrap();
        let short = record(8, "pay-8").with_timeout(Duration::from_millis(200));
        let _ = p.publish_and_wait(short).await; // consumer may or may not be quick
        match q.publish_and_wait(record(8, "pay-8")).await {
            Err(Error::BadRequest { reason, .. }) => {
                assert!(reason.contains("already published"), "{reason}");
                assert!(reason.contains("IDMP"), "{reason}");
            }
            other => panic!("expected BadRequest, got {other:?}"),
        }
    }
}
