//! Admin: stats, pending, dead letters, replay, purge, and trimming that keeps pending entries.

use std::time::Duration;

use serde_json::json;
use tandem::queue::{Admin, Producer};
use tandem::{Payload, Request};

use crate::harness::{Consumer, Redis};
use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_replayed_and_purged() {
    let redis = Redis::start("admin", false);
    let dir = support::test_dir("queue-admin");
    let uri = format!("{}/jobs", redis.url());
    let p = Producer::from_uri(&uri).await.unwrap();
    let admin = Admin::from_uri(&uri).await.unwrap();
    let mut c = Consumer::start(
        &dir,
        &redis,
        "jobs",
        &["--max-deliveries", "1", "--group", "tandem"],
    );
    for n in 0..3 {
        p.publish(Request::new(
            "boom",
            Payload::json(&json!({"n": n})).unwrap(),
        ))
        .await
        .unwrap();
    }
    let dead = support::wait_until(Duration::from_secs(20), || {
        redis.query::<u64>(redis::cmd("XLEN").arg("jobs:dead")) == 3
    })
    .await;
    assert!(dead, "{}", c.output());
    let stats = admin.stats().await.unwrap();
    assert_eq!((stats.dead, stats.length), (3, 0), "{stats:?}");
    assert_eq!(stats.groups.len(), 1);
    assert_eq!(stats.groups[0].pending, 0);
    let letters = admin.dead(10).await.unwrap();
    assert_eq!(letters.len(), 3);
    assert_eq!(letters[0].reason, "failed");
    assert_eq!(letters[0].error.1, "ValueError");
    assert!(
        letters[0].error.2.contains("boom 0"),
        "{:?}",
        letters[0].error
    );
    c.kill();
    // Replay with no consumer: they wait in the stream, attempt reset.
    assert_eq!(admin.replay(2).await.unwrap(), 2);
    let stats = admin.stats().await.unwrap();
    assert_eq!((stats.dead, stats.length), (1, 2), "{stats:?}");
    assert_eq!(stats.groups[0].lag, Some(2));
    assert_eq!(admin.purge_dead().await.unwrap(), 1);
    assert_eq!(admin.stats().await.unwrap().dead, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_listing_and_trim_never_drop_pending_entries() {
    let redis = Redis::start("trim", false);
    let p = Producer::builder(redis.url(), "jobs")
        .group("g")
        .trim_every(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    for n in 0..10 {
        p.publish(Request::new(
            "record",
            Payload::json(&json!({"n": n})).unwrap(),
        ))
        .await
        .unwrap();
    }
    // No group yet: trimming must not drop anything.
    assert_eq!(p.trim().await.unwrap(), 0);
    // A consumer "c1" reads 4 entries and acks (without deleting) the first 2.
    let _: () = redis.query(
        redis::cmd("XGROUP")
            .arg("CREATE")
            .arg("jobs")
            .arg("g")
            .arg("0"),
    );
    let read: redis::Value = redis.query(
        redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("c1")
            .arg("COUNT")
            .arg(4)
            .arg("STREAMS")
            .arg("jobs")
            .arg(">"),
    );
    let redis::Value::Array(streams) = read else {
        panic!()
    };
    let redis::Value::Array(stream) = &streams[0] else {
        panic!()
    };
    let redis::Value::Array(items) = &stream[1] else {
        panic!()
    };
    let ids: Vec<String> = items
        .iter()
        .map(|e| match e {
            redis::Value::Array(p) => redis::from_redis_value(&p[0]).unwrap(),
            _ => panic!(),
        })
        .collect();
    let _: i64 = redis.query(redis::cmd("XACK").arg("jobs").arg("g").arg(&ids[..2]));
    let admin = Admin::connect(&redis.url(), "jobs").await.unwrap();
    let pending = admin.pending("g", 10).await.unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].consumer, "c1");
    assert_eq!(pending[0].deliveries, 1);
    assert_eq!(
        p.trim().await.unwrap(),
        2,
        "only the two acknowledged entries go"
    );
    let len: u64 = redis.query(redis::cmd("XLEN").arg("jobs"));
    assert_eq!(len, 8);
    let stats = admin.stats().await.unwrap();
    assert_eq!(stats.groups[0].consumers[0].pending, 2);
    assert!(stats.groups[0].oldest_pending_age.is_some());
}
