//! Admin::observe feeds the registry's queue gauges from a real stream.

use std::time::Duration;

use serde_json::json;
use tandem::metrics::Registry;
use tandem::queue::{Admin, Producer};
use tandem::{Payload, Request};

use crate::harness::{Consumer, Redis};
use crate::support;

fn gauge(text: &str, name: &str) -> Option<f64> {
    let prefix = format!("{name}{{");
    text.lines()
        .find(|l| l.starts_with(&prefix) && l.contains("stream=\"obs\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_observe_sets_lag_pending_and_dead_letter_gauges() {
    let redis = Redis::start("observe", false);
    let dir = support::test_dir("queue-observe");
    let uri = format!("{}/obs", redis.url());
    let p = Producer::from_uri(&uri).await.unwrap();
    let admin = Admin::from_uri(&uri).await.unwrap();
    let registry = Registry::new();
    let mut c = Consumer::start(
        &dir,
        &redis,
        "obs",
        &["--max-deliveries", "1", "--group", "tandem"],
    );
    for n in 0..2 {
        p.publish(Request::new(
            "boom",
            Payload::json(&json!({"n": n})).unwrap(),
        ))
        .await
        .unwrap();
    }
    let dead = support::wait_until(Duration::from_secs(20), || {
        redis.query::<u64>(redis::cmd("XLEN").arg("obs:dead")) == 2
    })
    .await;
    assert!(dead, "{}", c.output());
    c.kill();
    // No consumer now: three tasks wait undelivered.
    for n in 0..3 {
        p.publish(Request::new(
            "echo",
            Payload::json(&json!({"n": n})).unwrap(),
        ))
        .await
        .unwrap();
    }
    let stats = admin.observe(&registry).await.unwrap();
    assert_eq!(stats.dead, 2, "{stats:?}");
    let text = registry.encode();
    assert_eq!(
        gauge(&text, "tandem_queue_dead_letters"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(gauge(&text, "tandem_queue_pending"), Some(0.0), "{text}");
    assert_eq!(gauge(&text, "tandem_queue_lag"), Some(3.0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_follows_the_stream_until_dropped() {
    let redis = Redis::start("collect", false);
    let uri = format!("{}/obs", redis.url());
    let p = Producer::from_uri(&uri).await.unwrap();
    let admin = Admin::from_uri(&uri).await.unwrap();
    redis.query::<String>(
        redis::cmd("XGROUP")
            .arg("CREATE")
            .arg("obs")
            .arg("g")
            .arg("$")
            .arg("MKSTREAM"),
    );
    let registry = Registry::new();
    let collector = admin.collect(&registry, Duration::from_millis(50));
    let lag = || gauge(&registry.encode(), "tandem_queue_lag");
    assert!(support::wait_until(Duration::from_secs(10), || lag() == Some(0.0)).await);
    for n in 0..4 {
        p.publish(Request::new(
            "echo",
            Payload::json(&json!({"n": n})).unwrap(),
        ))
        .await
        .unwrap();
    }
    // No observe() call: the collector reads the new lag by itself.
    assert!(
        support::wait_until(Duration::from_secs(10), || lag() == Some(4.0)).await,
        "{:?}",
        lag()
    );
    drop(collector);
    p.publish(Request::new(
        "echo",
        Payload::json(&json!({"n": 4})).unwrap(),
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(lag(), Some(4.0), "a dropped collector stops updating");
}
