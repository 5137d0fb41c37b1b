//! publish_and_wait: results, remote errors, timeouts, the reply stream's cleanup.

use std::time::Duration;

use serde_json::{json, Value};
use tandem::queue::Producer;
use tandem::{Error, Payload, Request};
use tower::ServiceExt;

use crate::harness::{Consumer, Redis};
use crate::support;

async fn producer(redis: &Redis, stream: &str) -> Producer {
    Producer::builder(redis.url(), stream)
        .group("g")
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn result_comes_back_through_the_service() {
    let redis = Redis::start("result", false);
    let dir = support::test_dir("queue-result");
    let _c = Consumer::start(&dir, &redis, "jobs", &[]);
    let p = producer(&redis, "jobs").await;
    let req = Request::new("add", Payload::json(&json!({"a": 2, "b": 3})).unwrap())
        .with_timeout(Duration::from_secs(20))
        .with_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    let resp = p.clone().oneshot(req).await.unwrap();
    let v: Value = resp.decode().unwrap();
    assert_eq!(v["sum"], 5);
    assert_eq!(v["attempt"], 1);
    let left = v["left"]
        .as_f64()
        .expect("ctx.deadline set from the task's deadline");
    assert!(left > 0.0 && left <= 20.0, "{left}");
    assert_eq!(
        v["tp"],
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    );
}

#[tokio::test]
async fn remote_error_comes_back_with_type_and_traceback() {
    let redis = Redis::start("remote", false);
    let dir = support::test_dir("queue-remote");
    let _c = Consumer::start(&dir, &redis, "jobs", &["--max-deliveries", "1"]);
    let p = producer(&redis, "jobs").await;
    let req = Request::new("boom", Payload::json(&json!({"n": 4})).unwrap())
        .with_timeout(Duration::from_secs(20));
    match p.publish_and_wait(req).await {
        Err(Error::Remote {
            exc_type,
            message,
            traceback,
            ..
        }) => {
            assert_eq!(exc_type, "ValueError");
            assert!(message.contains("boom 4"), "{message}");
            assert!(traceback.contains("Traceback"), "{traceback}");
        }
        other => panic!("expected Remote, got {other:?}"),
    }
    // Unknown method: BadRequest, no retry.
    let req = Request::new("nope", Payload::json(&json!({})).unwrap())
        .with_timeout(Duration::from_secs(20));
    match p.publish_and_wait(req).await {
        Err(Error::BadRequest { reason, .. }) => assert!(reason.contains("no handler 'nope'")),
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

#[tokio::test]
async fn publish_and_wait_times_out_without_consumers() {
    let redis = Redis::start("timeout", false);
    let p = producer(&redis, "jobs").await;
    let req = Request::new("add", Payload::json(&json!({"a": 1, "b": 1})).unwrap())
        .with_timeout(Duration::from_millis(300));
    match p.publish_and_wait(req).await {
        Err(Error::Timeout { target, .. }) => assert!(target.contains("add on jobs"), "{target}"),
        other => panic!("expected Timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn reply_stream_expires_and_is_deleted_on_drop() {
    let redis = Redis::start("replyclean", false);
    let dir = support::test_dir("queue-replyclean");
    let _c = Consumer::start(&dir, &redis, "jobs", &[]);
    let p = producer(&redis, "jobs").await;
    let req = Request::new("add", Payload::json(&json!({"a": 1, "b": 1})).unwrap())
        .with_timeout(Duration::from_secs(20));
    p.publish_and_wait(req).await.unwrap();
    let key = p.reply_stream().unwrap().to_owned();
    assert!(key.starts_with("jobs:reply:"), "{key}");
    let ttl: i64 = redis.query(redis::cmd("PTTL").arg(&key));
    assert!(ttl > 0, "reply stream {key} has no expiry (pttl {ttl})");
    drop(p);
    let gone = support::wait_until(Duration::from_secs(5), || {
        redis.query::<i64>(redis::cmd("EXISTS").arg(&key)) == 0
    })
    .await;
    assert!(
        gone,
        "reply stream {key} still exists after the producer was dropped"
    );
}

#[tokio::test]
async fn from_uri_rejects_bad_uris_with_the_expected_form() {
    let e = Producer::from_uri("http://127.0.0.1:6379/jobs")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BadRequest { .. }), "{e:?}");
    assert!(e.to_string().contains("redis://HOST:PORT/STREAM"), "{e}");
    let port = support::free_port();
    let e = Producer::from_uri(&format!("redis://127.0.0.1:{port}/jobs"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
}
